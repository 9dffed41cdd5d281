"""The Connectors API (/api/v1/connectors/): every platform, the shared sync routes."""

from rest_compat.sync_base import connector_router

PREFIX = "/api/v1/connectors"
router = connector_router(PREFIX)
