"""The image and the compose file, checked without a Docker engine: hadolint on the
Dockerfile, and the shape compose.yaml must keep (health-gated start, one migration run,
graceful stops)."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PIM_SERVICES = ("api", "worker", "connectors-worker")


def _final_stage(dockerfile: str) -> list[str]:
    lines = [line.strip() for line in dockerfile.splitlines()]
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    return lines[last_from:]


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_installs_the_lock_and_runs_unprivileged_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile
    assert "-r requirements.txt" in dockerfile
    final = _final_stage(dockerfile)
    assert len([line for line in dockerfile.splitlines() if line.startswith("FROM ")]) == 2
    user = next(line for line in final if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK ") for line in final)
    # Nothing is built in the runtime stage: it only copies the build stage's virtualenv.
    assert not any("pip install" in line or "apt-get" in line for line in final)


def test_compose_starts_each_service_once_what_it_needs_is_healthy() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert services["migrate"]["command"] == ["pim", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in PIM_SERVICES:
        service = services[name]
        assert service["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "redis": {"condition": "service_healthy"},
        }, name
        assert service["stop_grace_period"], name
    for name in ("worker", "connectors-worker"):
        check = services[name]["healthcheck"]["test"]
        assert check[:4] == ["CMD", "pim", "worker", "--check"], name
        assert check[4:] == services[name]["command"][2:], name  # the queue it serves
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
