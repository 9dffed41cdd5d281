"""Loading the demo catalog in the background."""

from typing import Any

from pim.demo import load_demo


async def load_demo_catalog(ctx: dict[str, Any], account_name: str, product_count: int) -> str:
    # Idempotent: products are upserted by EAN, brands and suppliers by name and code.
    return await load_demo(ctx["runtime"], account_name, product_count)
