"""/docs and GraphiQL render in a real browser with every host but this one unreachable:
their JavaScript and CSS come from the application, not from a CDN."""

import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from pim.settings import Settings
from service.api import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Every name resolves to nothing, except the loopback address the app listens on.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app served over real HTTP on a free port (a browser cannot use an ASGI client)."""
    app = create_app(Settings(data_dir=Path(tmp_path_factory.mktemp("docs"))))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def rendered_dom(url: str) -> str:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/ensure-services.sh installs it)")
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", OFFLINE, "--virtual-time-budget=15000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_graphiql_renders_its_editor_offline(base_url: str) -> None:
    dom = rendered_dom(f"{base_url}/graphql")
    assert 'class="graphiql-query-editor' in dom
    assert "CodeMirror" in dom and "graphiql-execute-button" in dom


def test_the_docs_page_renders_the_operations_offline(base_url: str) -> None:
    dom = rendered_dom(f"{base_url}/docs")
    assert 'data-path="/api/v1/keys"' in dom
    assert 'data-path="/api/v1/ext/products"' in dom
    assert 'class="opblock-summary-method">POST' in dom


def test_the_pages_load_nothing_from_another_host(base_url: str) -> None:
    for path in ("/docs", "/graphql"):
        page = httpx.get(f"{base_url}{path}", headers={"Accept": "text/html"}).text
        sources = re.findall(r"""(?:src|href)=["']([^"']+)""", page)
        assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)
        assert "https://" not in page and "http://" not in page, path
