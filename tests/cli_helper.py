"""Running the `pim` command in a subprocess on the embedded default, as a newcomer runs it."""

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def pim(data_dir: Path, *args: str, python: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIM_")}
    env["PIM_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, *python, "-m", "service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
