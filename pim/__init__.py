"""Infrastructure shared by every layer: settings, database, auth, clock, jobs, limits."""
