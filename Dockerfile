# The API (default command) and the arq workers (`pim worker`) in one image.
# Stage 1 installs the locked dependencies (hashes checked, wheels only) and the project
# into a virtualenv; stage 2 is a slim runtime with that virtualenv and nothing that builds.

FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src

# The lock first: this layer is rebuilt only when the lock changes.
COPY requirements.txt ./
RUN python -m venv /opt/pim \
    && /opt/pim/bin/pip install --require-hashes --no-deps --only-binary=:all: -r requirements.txt

COPY pyproject.toml README.md ./
COPY pim pim
COPY models models
COPY resolvers resolvers
COPY schema schema
COPY rest_compat rest_compat
COPY jobs jobs
COPY connectors connectors
COPY service service
RUN /opt/pim/bin/pip install --no-deps . \
    && /opt/pim/bin/pip uninstall --yes pip


FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/pim/bin:$PATH \
    PIM_DATA_DIR=/data

RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin pim \
    && mkdir -p /data \
    && chown pim:pim /data

COPY --from=build /opt/pim /opt/pim
WORKDIR /data
USER 10001:10001

EXPOSE 8000
# Ready, not only alive: the database answers at the latest migrations, and Redis. A
# worker's container runs `pim worker --check` instead (compose.yaml).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4).status != 200)"]

# SIGTERM lets uvicorn finish the requests in flight; `pim worker` drains on it: running
# imports hand over at their next chunk, and what still runs after
# PIM_WORKER_DRAIN_SECONDS (20) goes back to the queue. Stop it with more time than that
# before the SIGKILL (`docker stop -t 40`; compose sets stop_grace_period). A worker
# killed anyway loses nothing: its jobs' leases lapse.
STOPSIGNAL SIGTERM
# The same image runs the API (default) and the worker (`pim worker`).
CMD ["pim", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--no-migrate"]
