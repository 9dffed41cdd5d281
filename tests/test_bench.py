"""The benchmark harness, run once at tiny scale so that it cannot rot.

Timing goals are not checked here (they live in the benchmark); only that every
figure was measured and written out.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_harness_measures_every_figure_at_tiny_scale(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIM_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--scale", "tiny", "--seconds", "1", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(out.read_text())
    numbers = {f["number"] for f in report["figures"]}
    assert {"1", "1b", "2", "3", "4", "5", "6a", "6b", "6c", "6d", "7", "8", "9", "10"} == numbers
    assert all(f["value"] is not None for f in report["figures"]), report["figures"]
    assert "figure" in done.stdout  # the table was printed
