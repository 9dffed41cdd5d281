"""Generating the benchmark catalog straight into PostgreSQL with COPY.

The catalog is what a mid-size retailer has: brands, a category tree, suppliers,
products with generic and supplier stock, and a channel price list. Setup speed
matters (a 1M catalog has to be built in seconds), so it bypasses the API; the
API is what gets measured afterwards.
"""

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from jobs.demo import ean13
from pim.ids import uuid7

BRANDS = 200
SUPPLIERS = 25
ROOTS, CHILDREN = 12, 8


async def generate(
    conn: asyncpg.Connection, account_name: str, count: int, seed: int = 7
) -> uuid.UUID:
    rng = random.Random(seed)
    account_id = uuid7()
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO accounts (id, name, strict_ean, created_at) VALUES ($1, $2, false, $3)",
        account_id, account_name, now,
    )  # fmt: skip
    brands = [(uuid7(), account_id, f"Marque {n}", f"marque {n}", now) for n in range(BRANDS)]
    await conn.copy_records_to_table(
        "brands", records=brands, columns=["id", "account_id", "name", "name_key", "created_at"]
    )
    suppliers = [
        (uuid7(), account_id, f"SUP{n:03d}", f"Fournisseur {n}", "FR", True, now)
        for n in range(SUPPLIERS)
    ]
    await conn.copy_records_to_table(
        "suppliers", records=suppliers,
        columns=["id", "account_id", "code", "name", "country", "is_active", "created_at"],
    )  # fmt: skip
    categories = []
    for r in range(ROOTS):
        root = uuid7()
        categories.append((root, account_id, None, f"Rayon {r}", f"rayon-{r}", 0, r, True, now))
        for c in range(CHILDREN):
            categories.append(
                (uuid7(), account_id, root, f"Rayon {r}.{c}", f"rayon-{r}-{c}", 1, c, True, now)
            )
    await conn.copy_records_to_table(
        "categories", records=categories,
        columns=["id", "account_id", "parent_id", "name", "slug", "level", "sort_order", "is_active", "created_at"],
    )  # fmt: skip
    leaves = [c[0] for c in categories if c[5] == 1]
    start = now - timedelta(days=30)
    products, stocks, offers = [], [], []
    for n in range(count):
        pid = uuid7()
        supplier = suppliers[n % SUPPLIERS]
        stamp = start + timedelta(microseconds=n * 50)
        cost = round(rng.uniform(2, 500), 2)
        products.append((
            pid, account_id, ean13(n + 1), True, f"Produit {n}", f"REF-{n:07d}", ean13(n + 1),
            brands[n % BRANDS][0], leaves[n % len(leaves)], supplier[0], supplier[2],
            "active" if n % 10 else "inactive", round(cost * 1.5, 2), cost, 20.0,
            round(rng.uniform(0.1, 30), 2), stamp, stamp,
        ))  # fmt: skip
        stocks.append((uuid7(), account_id, pid, rng.randint(0, 500), stamp))
        offers.append((uuid7(), account_id, pid, supplier[0], rng.randint(0, 200), stamp))
    await conn.copy_records_to_table(
        "products", records=products,
        columns=["id", "account_id", "ean", "ean_checksum_valid", "name", "reference", "barcode",
                 "brand_id", "category_id", "supplier_id", "supplier_code", "status", "price",
                 "cost_price", "tax_rate", "weight", "created_at", "updated_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "product_stocks",
        records=stocks,
        columns=["id", "account_id", "product_id", "quantity", "updated_at"],
    )
    await conn.copy_records_to_table(
        "supplier_products", records=offers,
        columns=["id", "account_id", "product_id", "supplier_id", "stock", "updated_at"],
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO product_count_deltas (account_id, delta) VALUES ($1, $2)", account_id, count
    )
    await conn.execute("VACUUM ANALYZE")
    return account_id
