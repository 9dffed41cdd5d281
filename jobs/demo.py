"""A realistic demo catalog: brands, a category tree, suppliers, products with stock and prices;
loaded by `pim demo` or in the background.

Deterministic (seeded), and written through the same resolvers as any client,
so running it twice updates rather than duplicates.
"""

import random
import uuid
from typing import Any

from sqlalchemy import select

from models import Category
from pim.auth import SCOPES, Caller
from pim.runtime import Runtime
from pim.sql import chunks
from resolvers import catalog, keys
from resolvers.product_writes import WriteItem, WriteOptions, write_products

BRANDS = ["KIMEX", "Vogel's", "Sony", "Samsung", "LG", "Philips", "Hama", "Belkin", "Logitech",
          "Bosch", "Moulinex", "SEB", "Tefal", "Rowenta", "Brandt", "Thomson"]  # fmt: skip
SUPPLIERS = [("KIMEX", "KIMEX International", "FR"), ("INGRAM", "Ingram Micro", "FR"),
             ("ALSO", "ALSO France", "FR"), ("TDSYN", "TD Synnex", "DE"),
             ("EXERTIS", "Exertis", "GB")]  # fmt: skip
TREE = {
    "Supports TV": ["Supports muraux", "Supports plafond", "Pieds TV"],
    "Câbles & connectique": ["HDMI", "USB", "Audio"],
    "Électroménager": ["Cuisine", "Entretien des sols", "Soin du linge"],
    "Informatique": ["Claviers", "Souris", "Webcams"],
}
PRODUCT_KINDS = {
    "Supports muraux": [
        "Support TV mural fixe",
        "Support TV mural orientable",
        "Support TV inclinable",
    ],
    "Supports plafond": ["Support plafond motorisé", "Support plafond télescopique"],
    "Pieds TV": ["Pied TV sur roulettes", "Pied TV design"],
    "HDMI": ["Câble HDMI 2.1", "Câble HDMI haute vitesse", "Adaptateur HDMI"],
    "USB": ["Câble USB-C", "Hub USB-C", "Chargeur USB"],
    "Audio": ["Câble optique", "Câble jack 3,5 mm"],
    "Cuisine": ["Robot pâtissier", "Bouilloire", "Grille-pain"],
    "Entretien des sols": ["Aspirateur balai", "Aspirateur robot"],
    "Soin du linge": ["Fer à repasser", "Centrale vapeur"],
    "Claviers": ["Clavier sans fil", "Clavier mécanique"],
    "Souris": ["Souris ergonomique", "Souris sans fil"],
    "Webcams": ["Webcam Full HD", "Webcam 4K"],
}
COLORS = ["Noir", "Blanc", "Argent", "Gris", "Rouge"]


def ean13(number: int) -> str:
    body = f"376{number:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


async def _demo_caller(runtime: Runtime, account_name: str) -> Caller:
    async with runtime.db.transaction() as session:
        account = await keys.get_or_create_account(session, account_name)
    return Caller(
        account_id=account.id,
        account_name=account.name,
        key_id=uuid.UUID(int=0),
        key_name="demo loader",
        scopes=frozenset(SCOPES),
    )


async def _categories(runtime: Runtime, caller: Caller) -> dict[str, uuid.UUID]:
    ids: dict[str, uuid.UUID] = {}
    async with runtime.db.transaction() as session:
        existing = await session.scalars(
            select(Category).where(Category.account_id == caller.account_id)
        )
        ids = {c.name: c.id for c in existing}
        for order, (root, children) in enumerate(TREE.items(), start=1):
            if root not in ids:
                created = await catalog.create_category(
                    session, caller, data=catalog.CategoryInput(name=root, sort_order=order)
                )
                ids[root] = created.id
            for child_order, child in enumerate(children, start=1):
                if child not in ids:
                    data = catalog.CategoryInput(
                        name=child, parent_id=ids[root], sort_order=child_order
                    )
                    ids[child] = (await catalog.create_category(session, caller, data=data)).id
    return ids


async def load_demo(runtime: Runtime, account_name: str, product_count: int) -> str:
    caller = await _demo_caller(runtime, account_name)
    categories = await _categories(runtime, caller)
    async with runtime.db.transaction() as session:
        known = {s.code for s in await catalog.list_suppliers(session, caller, active_only=False)}
        for code, name, country in SUPPLIERS:
            if code not in known:
                data = catalog.SupplierInput(code=code, name=name, country=country)
                await catalog.create_supplier(session, caller, data=data)
    rng = random.Random(42)
    leaf_names = list(PRODUCT_KINDS)
    items: list[WriteItem] = []
    for n in range(1, product_count + 1):
        leaf = rng.choice(leaf_names)
        brand = rng.choice(BRANDS)
        kind = rng.choice(PRODUCT_KINDS[leaf])
        color = rng.choice(COLORS)
        cost = round(rng.uniform(3, 400), 2)
        items.append(WriteItem(data={
            "ean": ean13(n),
            "name": f"{kind} {brand} {color}",
            "brand_name": brand,
            "reference": f"{brand[:3].upper()}-{n:06d}",
            "supplier_code": rng.choice(SUPPLIERS)[0],
            "category_id": str(categories[leaf]),
            "description": f"<p>{kind} de la marque {brand}, coloris {color.lower()}.</p>",
            "short_description": f"{kind} {color.lower()}",
            "status": "active" if rng.random() > 0.08 else "inactive",
            "price": round(cost * rng.uniform(1.3, 1.9), 2),
            "cost_price": cost,
            "tax_rate": 20.0,
            "stock": rng.randint(0, 250),
            "weight": round(rng.uniform(0.1, 25), 2),
            "color": color,
            "country_of_origin": rng.choice(["FR", "DE", "CN", "IT"]),
            "warranty_duration": rng.choice([12, 24, 36]),
        }))  # fmt: skip
    # With a supplier code, stock is the supplier's; a second pass sets our own stock.
    warehouse = [WriteItem(data={"ean": i.data["ean"], "stock": rng.randint(0, 80)}) for i in items]
    created = updated = 0
    for chunk in chunks(items, 500):
        async with runtime.db.transaction() as session:
            batch = await write_products(session, caller, items=chunk, options=WriteOptions())
        created += batch.count("created")
        updated += batch.count("updated", "unchanged")
    for chunk in chunks(warehouse, 500):
        async with runtime.db.transaction() as session:
            await write_products(session, caller, items=chunk, options=WriteOptions())
    return (
        f"Catalogue de démonstration '{account_name}' : {created} produits créés, "
        f"{updated} mis à jour, {len(BRANDS)} marques, {len(categories)} catégories, "
        f"{len(SUPPLIERS)} fournisseurs."
    )


async def load_demo_catalog(ctx: dict[str, Any], account_name: str, product_count: int) -> str:
    # Idempotent: products are upserted by EAN, brands and suppliers by name and code.
    return await load_demo(ctx["runtime"], account_name, product_count)
