"""`nst install-gimp-plugin` with GIMP 3.0's and GIMP 3.2's user folders, read by real GIMP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .gimp3_harness import Gimp3

pytestmark = pytest.mark.gimp


def user_env(tmp_path: Path) -> dict[str, str | None]:
    """A user whose GIMP folders are under tmp_path/xdg, without GIMP3_DIRECTORY (GIMP picks GIMP/3.x)."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path), "GIMP3_DIRECTORY": None}


def install(gimp3: Gimp3, tmp_path: Path) -> str:
    """`nst install-gimp-plugin` as that user; what it printed."""
    installer = subprocess.run(
        [sys.executable, "-m", "nst_runtime.cli", "install-gimp-plugin", "--python", gimp3.installed_python],
        env=gimp3.env(user_env(tmp_path)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert installer.returncode == 0, installer.stderr
    return installer.stdout


def test_each_gimp_finds_the_plugin_in_its_own_user_folder(gimp3: Gimp3, tmp_path: Path) -> None:
    """Both GIMP/3.0 and GIMP/3.2 exist; the installer fills both, and this GIMP registers the
    procedure from its own version's folder."""
    gimp_dir = tmp_path / "xdg" / "GIMP"
    for version in ("3.0", "3.2"):
        (gimp_dir / version).mkdir(parents=True)
    said = install(gimp3, tmp_path)
    assert f"GIMP 3.0: {gimp_dir / '3.0'}" in said and f"GIMP 3.2: {gimp_dir / '3.2'}" in said
    result = gimp3.batch({"action": "registration"}, tmp_path, user_env(tmp_path)).result
    assert result["registered"], "python-fu-nst-style-transfer is not registered"
    assert (gimp_dir / gimp3.version / "pluginrc").is_file(), f"GIMP {gimp3.version} did not use its folder"
    other = "3.2" if gimp3.version == "3.0" else "3.0"
    assert not (gimp_dir / other / "pluginrc").exists(), f"GIMP {gimp3.version} used GIMP/{other}"


@pytest.mark.gimp_versions("3.2")
def test_gimp_3_2_started_the_first_time_takes_the_plugin_from_3_0(gimp3: Gimp3, tmp_path: Path) -> None:
    """Installed before any GIMP 3 ran (the installer makes GIMP/3.0), then GIMP 3.2 starts: its
    first start copies the 3.0 user folder, plug-in and recorded Python included."""
    install(gimp3, tmp_path)
    result = gimp3.batch({"action": "registration"}, tmp_path, user_env(tmp_path)).result
    assert result["registered"], "GIMP 3.2 did not take the plug-in from GIMP/3.0"
    copied = tmp_path / "xdg" / "GIMP" / "3.2" / "plug-ins" / "nst-style-transfer" / "runtime.json"
    assert json.loads(copied.read_text()) == {"python": gimp3.installed_python}
