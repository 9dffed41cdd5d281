"""The Magento 2 sync module (/api/v1/magento/): the shared sync routes, Magento only."""

from rest_compat.sync_base import connector_router

PREFIX = "/api/v1/magento"
router = connector_router(PREFIX, platform="magento", tag="Magento")
