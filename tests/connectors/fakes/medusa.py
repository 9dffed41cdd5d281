"""A fake of the Medusa v2 Admin API on loopback: secret-key or JWT login, stores,
products (batch and one by one, with a refused title), inventory items and levels."""

import base64

from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.connectors.helpers import Fake

SECRET = "Basic " + base64.b64encode(b"sk_test_123:").decode()


def medusa_fake() -> Fake:
    fake = Fake(
        authorized=lambda r, _body: r.headers.get("authorization") in (SECRET, "Bearer jwt-1"),
    )
    remote = [
        {"id": f"prod_{i}", "title": f"Remote {i}", "status": "published",
         "variants": [{"id": f"variant_{i}", "sku": f"R-{i}", "ean": f"600000000000{i}",
                       "inventory_quantity": i,
                       "prices": [{"currency_code": "eur", "amount": 7.5}]}]}
        for i in range(3)
    ]  # fmt: skip

    def stored(body: dict, product_id: str) -> dict:
        variants = [
            {"id": v.get("id", f"variant_{v['sku']}"), **v} for v in body.get("variants", [])
        ]
        return {**body, "id": product_id, "variants": variants}

    def refused(body: dict) -> bool:
        return body.get("title") == "Produit 1"

    @fake.route("/auth/user/emailpass", "POST", open=True)
    async def login(request: Request) -> JSONResponse:
        body = await request.json()
        if body != {"email": "admin@pixee.fr", "password": "secret"}:
            return JSONResponse({"type": "unauthorized", "message": "Invalid"}, 401)
        return JSONResponse({"token": "jwt-1"})

    @fake.route("/admin/stores")
    async def stores(_: Request) -> JSONResponse:
        return JSONResponse({"stores": [{"id": "store_1", "name": "Medusa Store"}]})

    @fake.route("/admin/products/batch", "POST")
    async def batch(request: Request) -> JSONResponse:
        body = await request.json()
        if any(refused(p) for p in body["create"] + body["update"]):
            return JSONResponse(
                {"type": "invalid_data", "message": "Product with handle exists"}, 400
            )
        return JSONResponse({
            "created": [stored(p, f"prod_new_{p['variants'][0]['sku']}") for p in body["create"]],
            "updated": [stored(p, p["id"]) for p in body["update"]],
            "deleted": {"ids": [], "object": "product", "deleted": True},
        })  # fmt: skip

    @fake.route("/admin/products", "POST")
    async def create_one(request: Request) -> JSONResponse:
        body = await request.json()
        if refused(body):
            return JSONResponse(
                {"type": "invalid_data", "message": "Product with handle exists"}, 400
            )
        return JSONResponse({"product": stored(body, f"prod_new_{body['variants'][0]['sku']}")})

    @fake.route("/admin/products/{id}", "POST")
    async def update_one(request: Request) -> JSONResponse:
        return JSONResponse({"product": stored(await request.json(), request.path_params["id"])})

    @fake.route("/admin/products", "GET")
    async def list_products(request: Request) -> JSONResponse:
        offset, limit = int(request.query_params["offset"]), int(request.query_params["limit"])
        page = remote[offset : offset + min(limit, 2)]
        return JSONResponse(
            {"products": page, "count": len(remote), "offset": offset, "limit": limit}
        )

    @fake.route("/admin/inventory-items")
    async def inventory_items(request: Request) -> JSONResponse:
        skus = request.query_params.getlist("sku")
        items = [{"id": f"iitem_{sku}", "sku": sku,
                  "location_levels": [{"location_id": "sloc_1"}] if sku == "SKU-000" else []}
                 for sku in skus if sku != "SKU-002"]  # fmt: skip
        return JSONResponse({"inventory_items": items, "count": len(items)})

    @fake.route("/admin/products/{id}/variants/batch", "POST")
    @fake.route("/admin/inventory-items/location-levels/batch", "POST")
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"created": [], "updated": [], "deleted": []})

    return fake
