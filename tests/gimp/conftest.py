"""Fixtures that run real GIMP 3 headless (gimp-console-3.x) with the plug-in installed.

Every test that takes the ``gimp3`` fixture runs once per GIMP version: 3.0 (3.0.4, Debian trixie)
and 3.2 (3.2.6, Debian sid), the test id saying which ([gimp3.0], [gimp3.2]). A test marked
``@pytest.mark.gimp_versions("3.0")`` runs on those versions only (tests whose subject does not go
through GIMP, such as the interrupts by signal: docs/gimp-plugin.md lists them); NST_GIMP_VERSIONS=3.2
(comma-separated) limits a whole run. Each version is provisioned on first use by tools/provision-gimp3.sh (a root of
the Debian release that ships it, or apt on that release), so plain `pytest` works; every GIMP
call goes through tools/gimp3-run.sh. The worker runs in $NST_TEST_PYTHON (default: the Python
running pytest); NST_TEST_WORKER=stub swaps in tests/gimp/stub_worker.py (no torch; inverts the colours).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .gimp3_harness import GIMP_VERSIONS, IMAGES, REPO, STUB_PYTHON, TOOLS, Gimp3, make_gimp_config


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", 'gimp_versions(*versions): run only on these GIMP versions ("3.0", "3.2")')


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One run per GIMP version for every test that uses GIMP (a session-wide parameter)."""
    if "gimp_version" not in metafunc.fixturenames:
        return
    wanted = os.environ.get("NST_GIMP_VERSIONS")
    versions = [v.strip() for v in wanted.split(",") if v.strip()] if wanted else list(GIMP_VERSIONS)
    marker = metafunc.definition.get_closest_marker("gimp_versions")
    if marker is not None:
        versions = [v for v in versions if v in marker.args]
    ids = [f"gimp{v}" for v in versions]
    metafunc.parametrize("gimp_version", versions, ids=ids, scope="session")


def _provision(version: str) -> None:
    """Install this GIMP (or reuse it); skip when this user cannot (not root), fail when it breaks."""
    env = {**os.environ, "NST_GIMP_VERSION": version}
    proc = subprocess.run([str(TOOLS / "provision-gimp3.sh")], capture_output=True, text=True, check=False, env=env)
    if proc.returncode == 77:
        pytest.skip(f"GIMP {version} is not available here: {proc.stderr.strip()}")
    if proc.returncode != 0:
        pytest.fail(f"tools/provision-gimp3.sh failed for GIMP {version} ({proc.returncode}):\n{proc.stderr[-4000:]}")


@pytest.fixture(scope="session")
def test_python() -> str:
    """The Python that runs the real worker: $NST_TEST_PYTHON or the one running pytest."""
    return os.environ.get("NST_TEST_PYTHON") or sys.executable


@pytest.fixture(scope="session")
def gimp3(tmp_path_factory: pytest.TempPathFactory, test_python: str, gimp_version: str) -> Gimp3:
    """This GIMP version provisioned, and a fresh GIMP config dir holding the installed plug-in."""
    _provision(gimp_version)
    stub = os.environ.get("NST_TEST_WORKER") == "stub"
    config_dir = tmp_path_factory.mktemp(f"gimp{gimp_version}-config")
    installed = str(STUB_PYTHON) if stub else test_python
    make_gimp_config(config_dir, installed)
    # one graph cache for the whole session (and later sessions): the first export takes ~25 s
    cache_dir = Path(os.environ.get("NST_CACHE_DIR") or REPO / ".cache" / "nst-test-cache")
    cache_dir.mkdir(parents=True, exist_ok=True)
    needle = "stub_worker.py" if stub else "nst_runtime.worker"
    return Gimp3(config_dir, test_python, cache_dir, needle, installed, gimp_version)


@pytest.fixture(scope="session")
def images() -> Path:
    """../shared/images (photo and paintings); tests that need them skip without it."""
    missing = [
        name for name in ("golden_gate.jpg", "starry_night.jpg", "the_scream.jpg") if not (IMAGES / name).is_file()
    ]
    if missing:
        pytest.skip(f"test images {', '.join(missing)} not found at {IMAGES} (the project's ../shared/images)")
    return IMAGES
