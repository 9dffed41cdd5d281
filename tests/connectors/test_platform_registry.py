"""Every platform is known by name, and its adapter is loaded when it is used."""

from connectors.base import PLATFORMS, ConnectorConfig, adapter_for
from connectors.http import PlatformHttp
from connectors.sylius import SyliusAdapter
from pim import outbound
from tests.connectors.helpers import LOOPBACK


async def test_sfcc_sap_wizishop_cdiscount_fnac_and_sylius_are_registered() -> None:
    assert {"sfcc", "sap_commerce", "wizishop", "cdiscount", "fnac", "sylius"} <= set(PLATFORMS)
    config = ConnectorConfig(platform="sylius", base_url="https://shop.example", credentials={},
                             channel="WEB")  # fmt: skip
    async with outbound.client() as client:
        assert isinstance(adapter_for(config, PlatformHttp(client, LOOPBACK)), SyliusAdapter)
