"""The Magento 2 sync module (/api/v1/magento/): the shared sync routes, Magento only."""

from rest_compat.connector_routes import connector_router

PREFIX = "/api/v1/magento"
router = connector_router(PREFIX, platform="magento", tag="Magento")
