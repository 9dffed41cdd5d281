"""The composition root: the one place that wires the layers into running programs.

`service.api` builds the ASGI application (GraphQL and the REST shims), `service.worker`
the arq worker, `service.cli` the `pim` command, and `service.runtime` the process-wide
services with the job functions they run. Every other package is built on without
knowing this one: nothing imports `service`.
"""
