"""The WooCommerce sync module (/api/v1/woocommerce/): the shared sync routes, WooCommerce only."""

from rest_compat.connector_routes import connector_router

PREFIX = "/api/v1/woocommerce"
router = connector_router(PREFIX, platform="woocommerce", tag="WooCommerce")
