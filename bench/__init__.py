"""Benchmarks of the real stack (PostgreSQL, Redis, arq workers, uvicorn with 2 workers)."""
