"""Request bodies in /openapi.json for the routes that read their body themselves.

Those routes read the body only after the caller is admitted, and validate it in
`resolvers/` item by item (a batch's bad item fails alone), so FastAPI does not parse
it; `openapi_extra` still documents what they take, from the resolvers' own models, so
that the OpenAPI document is the contract clients and generated tests read.
"""

from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]


def schema_of(model: type[BaseModel], renames: dict[str, str] | None = None) -> Schema:
    """The model's JSON schema with its definitions inlined (`#/$defs/…` would point
    into the OpenAPI document), properties renamed to a surface's wire names."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    inlined: Schema = _inline(schema, definitions)
    if renames:
        wire = {domain: name for name, domain in renames.items()}
        properties = inlined.get("properties", {})
        inlined["properties"] = {wire.get(k, k): v for k, v in properties.items()}
    return inlined


def _inline(node: Any, definitions: Schema) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
        return {k: _inline(v, definitions) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    return node


def array_of(items: Schema, max_items: int) -> Schema:
    return {"type": "array", "items": items, "maxItems": max_items}


def object_with(**properties: Schema) -> Schema:
    return {"type": "object", "required": list(properties), "properties": properties}


def json_body(schema: Schema, *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route taking `schema` as its JSON body (`required=False`: an
    empty body stands for the defaults)."""
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": required, "content": content}}
