"""The Connectors API (/api/v1/connectors/): every platform, the shared sync routes."""

from rest_compat.connector_routes import connector_router

PREFIX = "/api/v1/connectors"
router = connector_router(PREFIX)
