"""`nst install-gimp-plugin` with GIMP 3.0's and GIMP 3.2's user folders side by side, read by real GIMP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .gimp3_harness import Gimp3

pytestmark = pytest.mark.gimp


def test_each_gimp_finds_the_plugin_in_its_own_user_folder(gimp3: Gimp3, tmp_path: Path) -> None:
    """Both GIMP/3.0 and GIMP/3.2 exist under $XDG_CONFIG_HOME; the installer fills both, and this
    GIMP, started without GIMP3_DIRECTORY, registers the procedure from its own version's folder."""
    xdg = tmp_path / "xdg"
    for version in ("3.0", "3.2"):
        (xdg / "GIMP" / version).mkdir(parents=True)
    env = {"XDG_CONFIG_HOME": str(xdg), "HOME": str(tmp_path), "GIMP3_DIRECTORY": None}
    installer = subprocess.run(
        [sys.executable, "-m", "nst_runtime.gimp_install", "--python", gimp3.installed_python],
        env=gimp3.env(env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert installer.returncode == 0, installer.stderr
    assert f"GIMP 3.0: {xdg / 'GIMP' / '3.0'}" in installer.stdout
    assert f"GIMP 3.2: {xdg / 'GIMP' / '3.2'}" in installer.stdout
    result = gimp3.batch({"action": "registration"}, tmp_path, env).result
    assert result["registered"], "python-fu-nst-style-transfer is not registered"
    own = xdg / "GIMP" / gimp3.version
    assert (own / "pluginrc").is_file(), f"GIMP {gimp3.version} did not use {own}"
    other = xdg / "GIMP" / ("3.2" if gimp3.version == "3.0" else "3.0")
    assert not (other / "pluginrc").exists(), f"GIMP {gimp3.version} used {other}"
