"""Every response a route test receives is checked against what /openapi.json declares
for its route, method and status: the documentation cannot drift from the wire.

The `client` fixture calls `check` from an httpx response hook. Validators are built
once per route and status (jsonschema-rs, compiled), so a check costs microseconds.
"""

import re
import weakref
from typing import Any

import httpx
import jsonschema_rs
import orjson
from fastapi import FastAPI

# GraphQL answers in its own format, whatever /openapi.json says of the route.
REST_PREFIX = "/api/"
Validator = Any  # jsonschema_rs's validator classes share no public base


def validator_for(
    schema: dict[str, Any], components: dict[str, Any], *, formats: bool
) -> Validator:
    """A validator of `schema`, whose `#/components/...` references resolve in `components`."""
    return jsonschema_rs.validator_for(
        {**schema, "components": components}, validate_formats=formats
    )


def json_schema_of(response: dict[str, Any]) -> dict[str, Any] | None:
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    return schema if isinstance(schema, dict) else None


class ResponseChecker:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._openapi: dict[str, Any] | None = None
        self._templates: list[tuple[re.Pattern[str], str]] | None = None
        self._routes: dict[tuple[str, str], str | None] = {}
        self._validators: dict[tuple[str, str, int], Validator | None] = {}

    @property
    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            self._openapi = self.app.openapi()
        return self._openapi

    @property
    def templates(self) -> list[tuple[re.Pattern[str], str]]:
        """The documented paths as patterns, literal ones first: `/products/bulk` before
        `/products/{id}`, as the routes are declared."""
        if self._templates is None:
            rest = [p for p in self.openapi["paths"] if p.startswith(REST_PREFIX)]
            paths = sorted(rest, key=lambda p: (p.count("{"), p))
            self._templates = [
                (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(p)) + "$"), p)
                for p in paths
            ]
        return self._templates

    def template(self, method: str, path: str) -> str | None:
        """The documented operation that answers `method path`, if any (an undocumented
        method on a documented path is the router's 405, held to no operation)."""
        if (method, path) not in self._routes:
            found = next((t for pattern, t in self.templates if pattern.match(path)), None)
            if found is not None and method.lower() not in self.openapi["paths"][found]:
                found = None
            self._routes[(method, path)] = found
        return self._routes[(method, path)]

    def validator(self, template: str, method: str, status: int) -> Validator | None:
        key = (template, method, status)
        if key not in self._validators:
            operation = self.openapi["paths"][template][method.lower()]
            declared = operation["responses"].get(str(status))
            assert declared is not None, f"{method} {template} answered {status}, not documented"
            schema = json_schema_of(declared)
            components = self.openapi.get("components", {})
            self._validators[key] = (
                None if schema is None else validator_for(schema, components, formats=True)
            )
        return self._validators[key]

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        template = self.template(method, path)
        if template is None:
            return
        validator = self.validator(template, method, status)
        if validator is None:
            assert not body, f"{method} {template} {status} documents no body, sent {body[:200]!r}"
            return
        if not content_type.startswith("application/json"):
            return
        instance = orjson.loads(body)
        errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(instance)]
        assert not errors, f"{method} {template} {status} breaks its schema: {errors[:5]}"


_CHECKERS: "weakref.WeakKeyDictionary[FastAPI, ResponseChecker]" = weakref.WeakKeyDictionary()


def checker_for(app: FastAPI) -> ResponseChecker:
    if app not in _CHECKERS:
        _CHECKERS[app] = ResponseChecker(app)
    return _CHECKERS[app]


def response_hook(app: FastAPI) -> Any:
    """An httpx response hook checking each response against `app`'s OpenAPI document."""
    checker = checker_for(app)

    async def hook(response: httpx.Response) -> None:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return
        body = await response.aread()
        request = response.request
        checker.check(
            request.method, request.url.path, response.status_code,
            response.headers.get("content-type", ""), body,
        )  # fmt: skip

    return hook
