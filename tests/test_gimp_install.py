"""`nst install-gimp-plugin` against a scratch GIMP folder (no GIMP needed)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from nst_runtime.cli import gimp_install

PLUGIN = gimp_install.PLUGIN_NAME


def entry(gimp_dir: Path) -> Path:
    return gimp_dir / "plug-ins" / PLUGIN / f"{PLUGIN}.py"


@pytest.fixture(autouse=True)
def no_gi_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the interpreter check out of these tests unless one asks for it."""
    monkeypatch.setattr(gimp_install, "interpreter_problem", lambda gimp_dir: None)


def test_copy_records_the_python_and_keeps_the_executable_bit(tmp_path: Path, capsys) -> None:
    assert gimp_install.main(["--gimp-dir", str(tmp_path), "--python", "/opt/venv/bin/python"]) == 0
    assert entry(tmp_path).is_file() and not (tmp_path / "plug-ins" / PLUGIN).is_symlink()
    assert entry(tmp_path).stat().st_mode & stat.S_IXUSR
    runtime = json.loads((tmp_path / "plug-ins" / PLUGIN / "runtime.json").read_text())
    assert runtime == {"python": "/opt/venv/bin/python"}
    assert "copied" in capsys.readouterr().out


def test_link_points_at_the_source_and_records_the_python_in_the_gimp_dir(tmp_path: Path) -> None:
    assert gimp_install.main(["--gimp-dir", str(tmp_path), "--link"]) == 0
    folder = tmp_path / "plug-ins" / PLUGIN
    assert folder.is_symlink() and folder.resolve() == gimp_install.plugin_source().resolve()
    assert not (folder / "runtime.json").exists()
    assert json.loads((tmp_path / "nst-runtime.json").read_text())["python"]


def test_reinstall_replaces_and_uninstall_removes_everything(tmp_path: Path) -> None:
    assert gimp_install.main(["--gimp-dir", str(tmp_path), "--link"]) == 0
    assert gimp_install.main(["--gimp-dir", str(tmp_path)]) == 0  # link -> copy
    assert not (tmp_path / "plug-ins" / PLUGIN).is_symlink()
    assert not (tmp_path / "nst-runtime.json").exists()
    assert gimp_install.main(["--gimp-dir", str(tmp_path), "--uninstall"]) == 0
    assert not (tmp_path / "plug-ins" / PLUGIN).exists()
    assert gimp_install.plugin_source().is_dir(), "uninstall must never touch the source"


def test_default_gimp_dir_honours_gimp3_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIMP3_DIRECTORY", str(tmp_path / "g"))
    assert gimp_install.default_gimp_dir() == tmp_path / "g"
    monkeypatch.delenv("GIMP3_DIRECTORY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    if os.name == "posix" and os.uname().sysname == "Linux":
        assert gimp_install.default_gimp_dir() == tmp_path / "xdg" / "GIMP" / "3.0"


def test_python3_without_gi_on_path_is_detected_and_fixed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.undo()  # the real interpreter_problem
    monkeypatch.setattr(gimp_install.shutil, "which", lambda name: "/home/u/.pyenv/shims/python3")
    monkeypatch.setattr(gimp_install, "has_gi", lambda python: str(python) == str(gimp_install.SYSTEM_PYTHON))
    problem = gimp_install.interpreter_problem(tmp_path)
    assert problem and "--fix-interpreter" in problem and "No module named 'gi'" in problem
    assert gimp_install.main(["--gimp-dir", str(tmp_path), "--fix-interpreter"]) == 0
    interp = (tmp_path / "interpreters" / "pygimp.interp").read_text()
    assert f"python3={gimp_install.SYSTEM_PYTHON}\n" in interp and ":Python:E::py::python3:" in interp
    assert gimp_install.interpreter_problem(tmp_path) is None
    assert gimp_install.main(["--gimp-dir", str(tmp_path), "--uninstall"]) == 0
    assert not (tmp_path / "interpreters" / "pygimp.interp").exists()


def test_a_user_written_interp_file_survives_uninstall(tmp_path: Path) -> None:
    interp = tmp_path / "interpreters" / "pygimp.interp"
    interp.parent.mkdir(parents=True)
    interp.write_text("python3=/usr/bin/python3\n")
    assert gimp_install.main(["--gimp-dir", str(tmp_path), "--uninstall"]) == 0
    assert interp.exists()


def test_cli_dispatches_the_subcommand(tmp_path: Path) -> None:
    from nst_runtime import cli

    assert cli.main(["install-gimp-plugin", "--gimp-dir", str(tmp_path)]) == 0
    assert entry(tmp_path).is_file()


# ------------------------------------------------------------------ every GIMP 3.x on every platform


def _mkdirs(*folders: Path) -> None:
    for folder in folders:
        folder.mkdir(parents=True)


def test_linux_finds_the_distributions_and_the_flatpaks_gimp_3_folders(tmp_path: Path) -> None:
    home = tmp_path / "home"
    xdg = tmp_path / "xdg"
    flatpak = home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP"
    _mkdirs(xdg / "GIMP" / "3.0", xdg / "GIMP" / "3.2", xdg / "GIMP" / "2.10", flatpak / "3.0")
    targets = gimp_install.gimp_targets({"XDG_CONFIG_HOME": str(xdg)}, "linux", home)
    assert [(t.folder, t.kind) for t in targets] == [
        (xdg / "GIMP" / "3.0", "linux"),
        (xdg / "GIMP" / "3.2", "linux"),
        (flatpak / "3.0", "flatpak"),
    ]
    assert [t.folder for t in gimp_install.gimp_targets({}, "linux", home)] == [flatpak / "3.0"], (
        "~/.config is the XDG default"
    )


def test_windows_and_macos_folders(tmp_path: Path) -> None:
    appdata = tmp_path / "AppData" / "Roaming"
    _mkdirs(appdata / "GIMP" / "3.0", appdata / "GIMP" / "3.2")
    windows = gimp_install.gimp_targets({"APPDATA": str(appdata)}, "win32", tmp_path)
    assert [(t.folder.name, t.kind) for t in windows] == [("3.0", "windows"), ("3.2", "windows")]
    support = tmp_path / "Library" / "Application Support" / "GIMP"
    _mkdirs(support / "3.2")
    assert [t.folder for t in gimp_install.gimp_targets({}, "darwin", tmp_path)] == [support / "3.2"]


def test_gimp3_directory_is_the_only_target_when_set(tmp_path: Path) -> None:
    _mkdirs(tmp_path / ".config" / "GIMP" / "3.0")
    targets = gimp_install.gimp_targets({"GIMP3_DIRECTORY": str(tmp_path / "g")}, "linux", tmp_path)
    assert [(t.folder, t.kind) for t in targets] == [(tmp_path / "g", "GIMP3_DIRECTORY")]


def test_with_no_gimp_3_folder_yet_the_platforms_3_0_is_made(tmp_path: Path) -> None:
    made = gimp_install.gimp_targets({}, "linux", tmp_path)
    assert [(t.folder, t.found) for t in made] == [(tmp_path / ".config" / "GIMP" / "3.0", False)]
    assert gimp_install.gimp_targets({"APPDATA": "C:/A"}, "win32", tmp_path)[0].folder == Path("C:/A/GIMP/3.0")


def test_install_everywhere_says_where_and_prints_the_flatpak_permission(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    flatpak = home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0"
    _mkdirs(xdg / "GIMP" / "3.2", flatpak)
    monkeypatch.delenv("GIMP3_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(gimp_install.Path, "home", classmethod(lambda cls: home))
    monkeypatch.setattr(gimp_install.sys, "platform", "linux")
    assert gimp_install.main(["--python", "/opt/venv/bin/python"]) == 0
    out = capsys.readouterr().out
    assert entry(xdg / "GIMP" / "3.2").is_file() and entry(flatpak).is_file()
    assert f"GIMP 3.2: {xdg / 'GIMP' / '3.2'}" in out and f"Flatpak GIMP 3.0: {flatpak}" in out
    assert gimp_install.FLATPAK_OVERRIDE in out
    overrides = home / ".local" / "share" / "flatpak" / "overrides"
    overrides.mkdir(parents=True)
    (overrides / "org.gimp.GIMP").write_text("[Session Bus Policy]\norg.freedesktop.Flatpak=talk\n")
    assert gimp_install.main([]) == 0
    assert gimp_install.FLATPAK_OVERRIDE not in capsys.readouterr().out, "already allowed"
    assert gimp_install.main(["--uninstall"]) == 0
    assert not entry(xdg / "GIMP" / "3.2").exists() and not entry(flatpak).exists()


def test_gimp_3_0_and_3_2_side_by_side_both_get_the_plugin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    """A user who has run GIMP 3.0 and GIMP 3.2: one command installs into both folders, each with
    the runtime's Python, and one uninstall removes both."""
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    old, new = xdg / "GIMP" / "3.0", xdg / "GIMP" / "3.2"
    _mkdirs(old, new, home)
    monkeypatch.delenv("GIMP3_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.setattr(gimp_install.Path, "home", classmethod(lambda cls: home))
    monkeypatch.setattr(gimp_install.sys, "platform", "linux")
    assert gimp_install.main(["--python", "/opt/venv/bin/python"]) == 0
    out = capsys.readouterr().out
    assert f"GIMP 3.0: {old}" in out and f"GIMP 3.2: {new}" in out
    assert "no GIMP 3 user folder existed yet" not in out
    for folder in (old, new):
        assert entry(folder).is_file() and entry(folder).stat().st_mode & stat.S_IXUSR
        runtime = json.loads((folder / "plug-ins" / PLUGIN / "runtime.json").read_text())
        assert runtime == {"python": "/opt/venv/bin/python"}
    assert gimp_install.main(["--uninstall"]) == 0
    assert not entry(old).exists() and not entry(new).exists()


def test_with_no_gimp_folder_yet_it_says_which_gimp_takes_the_plugin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    """GIMP 3 never started: GIMP/3.0 is made, which GIMP 3.2 copies on its first start (tested with
    real GIMP in tests/gimp/test_install.py); only the Flatpak's own folder needs a second run."""
    monkeypatch.delenv("GIMP3_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(gimp_install.Path, "home", classmethod(lambda cls: tmp_path))
    monkeypatch.setattr(gimp_install.sys, "platform", "linux")
    assert gimp_install.main([]) == 0
    out = capsys.readouterr().out
    assert entry(tmp_path / "xdg" / "GIMP" / "3.0").is_file()
    assert "a GIMP 3.0 or 3.2 takes the plug-in from this one" in out and "Flatpak GIMP, start it once" in out
