"""REST shims: each surface translates its documented wire format onto resolvers/."""
