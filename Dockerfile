FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIM_DATA_DIR=/data
WORKDIR /app

COPY pyproject.toml README.md ./
COPY pim pim
COPY models models
COPY resolvers resolvers
COPY schema schema
COPY rest_compat rest_compat
COPY jobs jobs
COPY connectors connectors
RUN pip install --no-cache-dir . && useradd --create-home pim && mkdir -p /data && chown pim /data
USER pim

EXPOSE 8000
# `pim worker` drains on SIGTERM: running imports hand over at their next chunk, and
# what still runs after PIM_WORKER_DRAIN_SECONDS (20) goes back to the queue. Stop it
# with more time than that before the SIGKILL (`docker stop -t 40`; compose sets
# stop_grace_period). A worker killed anyway loses nothing: its jobs' leases lapse.
STOPSIGNAL SIGTERM
# The same image runs the API (default) and the worker (`pim worker`).
CMD ["pim", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
