"""The documentation pages (/docs) and GraphiQL, served with the JavaScript and CSS the
package ships in pim/static/ (rebuilt by scripts/build-web-assets.sh): no CDN, so they
work where browsers cannot reach one (closed networks, strict content policies)."""

from functools import cache
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"


@cache
def graphiql_page() -> str:
    return (STATIC_DIR / "graphiql.html").read_text(encoding="utf-8")


def install(app: FastAPI) -> None:
    """Serve /static and /docs; the app is made with docs_url=None (FastAPI's own page
    loads Swagger UI from a CDN)."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    swagger = f"{STATIC_PREFIX}/swagger-ui"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — documentation",
            swagger_js_url=f"{swagger}/swagger-ui-bundle.js",
            swagger_css_url=f"{swagger}/swagger-ui.css",
            swagger_favicon_url=f"{swagger}/favicon-32x32.png",
        )
