"""Fixtures that run real GIMP 3 headless (gimp-console-3.0) with the plug-in installed.

GIMP 3 is provisioned on first use by tools/provision-gimp3.sh (a Debian 13 root on Debian 12
hosts, apt on Debian 13), so plain `pytest` works; every GIMP call goes through
tools/gimp3-run.sh. The worker runs in $NST_TEST_PYTHON (default: the Python running pytest);
NST_TEST_WORKER=stub swaps in tests/gimp/stub_worker.py (no torch; inverts the colours).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .gimp3_harness import IMAGES, REPO, STUB_PYTHON, TOOLS, Gimp3, make_gimp_config


def _provision() -> None:
    """Install GIMP 3 (or reuse it); skip when this user cannot (not root), fail when it breaks."""
    proc = subprocess.run([str(TOOLS / "provision-gimp3.sh")], capture_output=True, text=True, check=False)
    if proc.returncode == 77:
        pytest.skip(f"GIMP 3 is not available here: {proc.stderr.strip()}")
    if proc.returncode != 0:
        pytest.fail(f"tools/provision-gimp3.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


@pytest.fixture(scope="session")
def test_python() -> str:
    """The Python that runs the real worker: $NST_TEST_PYTHON or the one running pytest."""
    return os.environ.get("NST_TEST_PYTHON") or sys.executable


@pytest.fixture(scope="session")
def gimp3(tmp_path_factory: pytest.TempPathFactory, test_python: str) -> Gimp3:
    """GIMP 3 provisioned, and a fresh GIMP config dir holding the installed plug-in."""
    _provision()
    stub = os.environ.get("NST_TEST_WORKER") == "stub"
    config_dir = tmp_path_factory.mktemp("gimp3-config")
    installed = str(STUB_PYTHON) if stub else test_python
    make_gimp_config(config_dir, installed)
    # one graph cache for the whole session (and later sessions): the first export takes ~25 s
    cache_dir = Path(os.environ.get("NST_CACHE_DIR") or REPO / ".cache" / "nst-test-cache")
    cache_dir.mkdir(parents=True, exist_ok=True)
    return Gimp3(config_dir, test_python, cache_dir, "stub_worker.py" if stub else "nst_runtime.worker", installed)


@pytest.fixture(scope="session")
def images() -> Path:
    """../shared/images (photo and paintings); tests that need them skip without it."""
    missing = [
        name for name in ("golden_gate.jpg", "starry_night.jpg", "the_scream.jpg") if not (IMAGES / name).is_file()
    ]
    if missing:
        pytest.skip(f"test images {', '.join(missing)} not found at {IMAGES} (the project's ../shared/images)")
    return IMAGES
