"""``nst install-gimp-plugin``: put the GIMP 3 plug-in where GIMP finds it, and tell it our Python.

The plug-in runs in GIMP's own Python, which has no numpy or torch, so it starts
``python -m nst_runtime.worker`` in the interpreter that holds this package. This command copies
(or with ``--link`` symlinks) ``plugin/nst-style-transfer/`` into ``<gimp-dir>/plug-ins/`` of
every GIMP 3.x user folder it finds (:func:`gimp_targets`: Linux's ``$XDG_CONFIG_HOME/GIMP/3.x``,
the Flatpak's ``~/.var/app/org.gimp.GIMP/config/GIMP/3.x``, Windows' ``%APPDATA%\\GIMP\\3.x``,
macOS's ``~/Library/Application Support/GIMP/3.x``, or ``$GIMP3_DIRECTORY`` alone) and
records ``sys.executable``: in ``runtime.json`` inside the copied folder, or for a link (whose
folder is the source checkout) in ``<gimp-dir>/nst-runtime.json``.

Where the plug-in source comes from: ``plugin/`` at the repository root when this package runs
from a checkout (editable install), else the copy a wheel installs as data files under
``<sys.prefix>/share/nst/plugin/`` (see ``[tool.setuptools.data-files]`` in pyproject.toml).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PLUGIN_NAME = "nst-style-transfer"
RUNTIME_JSON = "runtime.json"
USER_RUNTIME_JSON = "nst-runtime.json"
INTERP_FILE = Path("interpreters") / "pygimp.interp"
INTERP_MARK = "# written by nst install-gimp-plugin --fix-interpreter"
SYSTEM_PYTHON = Path("/usr/bin/python3")
GIMP3_VERSION = re.compile(r"3\.\d+")
FLATPAK_APP = "org.gimp.GIMP"
FLATPAK_OVERRIDE = f"flatpak override --user --talk-name=org.freedesktop.Flatpak {FLATPAK_APP}"


class InstallError(Exception):
    """A problem to report in one line, with exit code 1."""


@dataclass(frozen=True)
class Target:
    """One GIMP 3 user folder to install into, and which GIMP it belongs to."""

    folder: Path
    kind: str  # "given" (--gimp-dir), "GIMP3_DIRECTORY", "linux", "flatpak", "windows", "macos"
    found: bool = True  # False: no GIMP 3 folder existed, this is the platform's default

    @property
    def flatpak(self) -> bool:
        return self.kind == "flatpak"


def config_bases(system: str, environ: Mapping[str, str], home: Path) -> list[tuple[Path, str]]:
    """(folder holding GIMP/<version>/, kind) for each GIMP build this platform may have."""
    if system == "win32":
        return [(Path(environ.get("APPDATA") or home / "AppData" / "Roaming"), "windows")]
    if system == "darwin":
        return [(home / "Library" / "Application Support", "macos")]
    xdg = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [(xdg, "linux"), (home / ".var" / "app" / FLATPAK_APP / "config", "flatpak")]


def _gimp3_versions(gimp_folder: Path) -> list[Path]:
    """GIMP/3.0, GIMP/3.2, … that exist, oldest first."""
    try:
        found = [p for p in gimp_folder.iterdir() if p.is_dir() and GIMP3_VERSION.fullmatch(p.name)]
    except OSError:
        return []
    return sorted(found, key=lambda p: int(p.name.split(".")[1]))


def gimp_targets(
    environ: Mapping[str, str] | None = None, system: str | None = None, home: Path | None = None
) -> list[Target]:
    """Every GIMP 3.x user folder here: $GIMP3_DIRECTORY alone when set (GIMP then uses only it),
    else each GIMP/3.x folder of the platform's builds (on Linux the distribution's and the
    Flatpak's). With none yet (GIMP 3 never started), the platform's GIMP/3.0."""
    environ = os.environ if environ is None else environ
    system = system or ("linux" if sys.platform.startswith("linux") else sys.platform)
    home = home or Path.home()
    if environ.get("GIMP3_DIRECTORY"):
        return [Target(Path(environ["GIMP3_DIRECTORY"]).expanduser(), "GIMP3_DIRECTORY")]
    bases = config_bases(system, environ, home)
    targets = [Target(folder, kind) for base, kind in bases for folder in _gimp3_versions(base / "GIMP")]
    if targets:
        return targets
    base, kind = bases[0]
    return [Target(base / "GIMP" / "3.0", kind, found=False)]


def default_gimp_dir() -> Path:
    """The first of :func:`gimp_targets` (kept for callers that want one folder)."""
    return gimp_targets()[0].folder


def flatpak_allowed(home: Path | None = None) -> bool:
    """Whether the user's Flatpak overrides already let GIMP call org.freedesktop.Flatpak."""
    override = (home or Path.home()) / ".local" / "share" / "flatpak" / "overrides" / FLATPAK_APP
    try:
        text = override.read_text(encoding="utf-8")
    except OSError:
        return False
    return re.search(r"^org\.freedesktop\.Flatpak=talk\s*$", text, re.MULTILINE) is not None


def plugin_source() -> Path:
    """The plug-in folder: the checkout's plugin/ (editable) or the wheel's data-files copy."""
    candidates = [
        Path(__file__).resolve().parents[2] / "plugin" / PLUGIN_NAME,
        Path(sysconfig.get_path("data")) / "share" / "nst" / "plugin" / PLUGIN_NAME,
        Path(sys.prefix) / "share" / "nst" / "plugin" / PLUGIN_NAME,
    ]
    for folder in candidates:
        if (folder / f"{PLUGIN_NAME}.py").is_file():
            return folder
    raise InstallError("plug-in source not found; looked in " + ", ".join(str(c) for c in candidates))


def _remove(path: Path) -> bool:
    """Remove a file, a symlink or a folder; True when something was there."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return True
    if path.is_dir():
        shutil.rmtree(path)
        return True
    return False


def _write_runtime_json(path: Path, python: str) -> None:
    path.write_text(json.dumps({"python": python}, indent=2) + "\n", encoding="utf-8")


def install(gimp_dir: Path, python: str, link: bool) -> list[str]:
    """Copy or link the plug-in and record the runtime's Python; returns what was done."""
    source = plugin_source()
    target = gimp_dir / "plug-ins" / PLUGIN_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    done = [f"removed the previous {target}"] if _remove(target) else []
    user_json = gimp_dir / USER_RUNTIME_JSON
    if link:
        target.symlink_to(source, target_is_directory=True)
        _write_runtime_json(user_json, python)
        done += [f"linked {target} -> {source}", f"recorded the runtime Python {python} in {user_json}"]
    else:
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", RUNTIME_JSON))
        _write_runtime_json(target / RUNTIME_JSON, python)
        if _remove(user_json):
            done.append(f"removed the stale {user_json}")
        done += [f"copied {source} to {target}", f"recorded the runtime Python {python} in {target / RUNTIME_JSON}"]
    entry = target / f"{PLUGIN_NAME}.py"
    if not link:  # GIMP silently skips a plug-in without the executable bit
        entry.chmod(entry.stat().st_mode | 0o755)
    return done


def uninstall(gimp_dir: Path) -> list[str]:
    """Remove the plug-in, the recorded Python and an interpreter file this command wrote."""
    done = []
    for path in (gimp_dir / "plug-ins" / PLUGIN_NAME, gimp_dir / USER_RUNTIME_JSON):
        if _remove(path):
            done.append(f"removed {path}")
    interp = gimp_dir / INTERP_FILE
    if interp.is_file() and interp.read_text(encoding="utf-8").startswith(INTERP_MARK):
        interp.unlink()
        done.append(f"removed {interp}")
    return done or [f"nothing to remove in {gimp_dir}"]


def has_gi(python: str | Path) -> bool:
    """Whether this interpreter can import PyGObject, which every GIMP Python plug-in needs."""
    try:
        result = subprocess.run([str(python), "-c", "import gi"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def interpreter_problem(gimp_dir: Path) -> str | None:
    """Why GIMP started from this shell would fail to run Python plug-ins, or None.

    GIMP runs `#!/usr/bin/env python3` plug-ins with the python3 first on PATH unless an
    interpreters/pygimp.interp maps it; a pyenv/conda/venv python3 there has no gi, and every
    Python plug-in then dies with "No module named 'gi'".
    """
    if (gimp_dir / INTERP_FILE).is_file():
        return None
    on_path = shutil.which("python3")
    if on_path is None or has_gi(on_path) or not has_gi(SYSTEM_PYTHON):
        return None
    return (
        f"the python3 first on PATH ({on_path}) cannot import gi, so GIMP started from this shell "
        "fails to run any Python plug-in (\"No module named 'gi'\"). Fix: run again with "
        f"--fix-interpreter (writes {gimp_dir / INTERP_FILE} pointing at {SYSTEM_PYTHON}), "
        f"or start GIMP with {SYSTEM_PYTHON.parent} first on PATH."
    )


def interp_text(python: Path = SYSTEM_PYTHON) -> str:
    """A pygimp.interp that runs `#!/usr/bin/env python3` plug-ins (and .py files) with python."""
    return f"{INTERP_MARK}\npython={python}\npython3={python}\n:Python:E::py::python3:\n"


def fix_interpreter(gimp_dir: Path) -> str:
    """Map python/python3 to the system python3 that has gi, in the user's GIMP folder."""
    if not has_gi(SYSTEM_PYTHON):
        raise InstallError(f"{SYSTEM_PYTHON} cannot import gi either: install your distribution's python3-gi")
    interp = gimp_dir / INTERP_FILE
    interp.parent.mkdir(parents=True, exist_ok=True)
    interp.write_text(interp_text(), encoding="utf-8")
    return f"wrote {interp}: GIMP's Python plug-ins run with {SYSTEM_PYTHON}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="nst install-gimp-plugin",
        description="Install the Neural Style Transfer plug-in into GIMP 3 (Filters > Artistic).",
    )
    parser.add_argument(
        "--gimp-dir",
        type=Path,
        default=None,
        help="one GIMP 3 user folder (default: $GIMP3_DIRECTORY, else every GIMP/3.x folder found: "
        "~/.config, the Flatpak's ~/.var/app/org.gimp.GIMP/config, %%APPDATA%%, ~/Library/Application Support)",
    )
    parser.add_argument("--link", action="store_true", help="symlink the plug-in folder instead of copying it")
    parser.add_argument("--uninstall", action="store_true", help="remove what this command installed")
    parser.add_argument(
        "--fix-interpreter",
        action="store_true",
        help=f"make GIMP run Python plug-ins with {SYSTEM_PYTHON} (writes interpreters/pygimp.interp)",
    )
    parser.add_argument("--python", default=sys.executable, help="the Python that runs the worker (default: this one)")
    return parser.parse_args(argv)


KIND_NAMES = {
    "given": "the folder given",
    "GIMP3_DIRECTORY": "$GIMP3_DIRECTORY",
    "linux": "GIMP",
    "flatpak": "Flatpak GIMP",
    "windows": "GIMP for Windows",
    "macos": "GIMP for macOS",
}


def install_into(target: Target, python: str, link: bool, fix: bool) -> list[str]:
    """Install into one GIMP folder; what was done, with the Flatpak permission or interpreter advice."""
    lines = install(target.folder, python, link)
    if target.flatpak:  # the sandbox has its own Python with gi; it starts ours on the host
        if not flatpak_allowed():
            lines.append(f"the Flatpak GIMP starts your Python on the host; allow that once with: {FLATPAK_OVERRIDE}")
        if link:
            lines.append("note: a linked plug-in works in the Flatpak only where the sandbox can see the checkout")
    elif fix:
        lines.append(fix_interpreter(target.folder))
    elif problem := interpreter_problem(target.folder):
        lines.append("warning: " + problem)
    return lines


def main(argv: list[str]) -> int:
    """Entry point; argv holds the arguments after `install-gimp-plugin`."""
    args = parse_args(argv)
    targets = [Target(args.gimp_dir, "given")] if args.gimp_dir else gimp_targets()
    python = str(Path(args.python).absolute())
    out: list[str] = []
    try:
        for target in targets:
            target = Target(target.folder.expanduser().absolute(), target.kind, target.found)
            versioned = target.kind not in ("given", "GIMP3_DIRECTORY")
            name = KIND_NAMES[target.kind] + (f" {target.folder.name}" if versioned else "")
            out.append(f"{name}: {target.folder}")
            done = (
                uninstall(target.folder)
                if args.uninstall
                else install_into(target, python, args.link, args.fix_interpreter)
            )
            out += [f"  {line}" for line in done]
            if not target.found and not args.uninstall:
                out.append(  # GIMP 3.2's first start copies GIMP/3.0, plug-ins included (tests/gimp/test_install.py)
                    "  no GIMP 3 user folder existed yet: a GIMP 3.0 or 3.2 takes the plug-in from this one; "
                    "for the Flatpak GIMP, start it once and run this again"
                )
        if not args.uninstall:
            out.append("restart GIMP, then use Filters > Artistic > Neural Style Transfer…")
    except (InstallError, OSError) as exc:
        for line in out:
            print(line)
        print(f"nst install-gimp-plugin: {exc}", file=sys.stderr)
        return 1
    for line in out:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
