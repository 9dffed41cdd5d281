"""Every operation, written once. GraphQL fields and REST routes call these functions.

Functions take the session and the caller first, then keyword-only inputs; they
flush but never commit (the request edge or the job owns the transaction).
"""
