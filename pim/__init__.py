"""Infrastructure shared by every layer: settings, database, auth, clock, jobs, limits.

It imports no other package of the project: what it runs (the job functions, say) is
handed to it by the composition root, service/.
"""
