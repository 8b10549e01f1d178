"""Finding the user's Python and starting ``python -m nst_runtime.worker`` in it, on every platform.

GIMP's own Python has neither numpy nor torch, so the worker runs in the interpreter that
``nst install-gimp-plugin`` recorded. How it is started depends on where GIMP runs:

- **Linux** (a distribution's GIMP, an AppImage): a child process whose parent-death signal is
  SIGTERM, because GIMP cancels a plug-in by killing it and a killed plug-in stops nothing.
- **Flatpak** (``/.flatpak-info`` exists): the sandbox cannot run the user's Python, so the
  worker runs on the host through ``flatpak-spawn --host --watch-bus``. That needs the
  ``org.freedesktop.Flatpak`` talk permission (:data:`FLATPAK_OVERRIDE`); flatpak-spawn forwards
  signals, and ``--watch-bus`` ends the host process when flatpak-spawn itself is killed.
- **Windows**: no console window (``CREATE_NO_WINDOW``) and no ``preexec_fn`` (there is none);
  the worker notices a vanished plug-in by its stdin closing (protocol 2).
- **macOS**: like Linux without the parent-death signal; stdin closing stops the worker.

Everything here is plain Python with no GIMP import, so tests/test_plugin_launch.py checks the
command line and environment for each platform outside GIMP. Other procedures of the plug-in
(frames, regions) start their workers through :func:`worker_launch` too.
"""

from __future__ import annotations

import configparser
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from .errors import PlugInError

RUNTIME_HINT = "runtime not found: run `nst install-gimp-plugin`"
WORKER_MODULE = "nst_runtime.worker"
RUNTIME_JSON = "runtime.json"
USER_RUNTIME_JSON = "nst-runtime.json"
FLATPAK_INFO = "/.flatpak-info"
FLATPAK_APP = "org.gimp.GIMP"
FLATPAK_OVERRIDE = f"flatpak override --user --talk-name=org.freedesktop.Flatpak {FLATPAK_APP}"
CREATE_NO_WINDOW = 0x08000000  # subprocess.CREATE_NO_WINDOW, which exists only on Windows builds of Python
PR_SET_PDEATHSIG = 1
NO_RUNTIME_WORDS = ("No module named 'nst_runtime'", f"No module named {WORKER_MODULE}")
# what flatpak-spawn prints when the sandbox may not call org.freedesktop.Flatpak
FLATPAK_DENIED_WORDS = ("org.freedesktop.Flatpak", "ServiceUnknown", "AccessDenied", "Portal call failed")

# GIMP (or its bundle: AppImage, Flatpak, the macOS and Windows builds) sets these for its own
# Python; in the user's Python they would load the wrong typelibs or the wrong standard library.
DROPPED_ENV = ("GI_TYPELIB_PATH", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE")
# The macOS bundle points the dynamic loader at its own libraries, an AppImage does the same on Linux.
DROPPED_ENV_DARWIN = ("DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH", "DYLD_FRAMEWORK_PATH", "DYLD_INSERT_LIBRARIES")
DROPPED_ENV_APPIMAGE = ("LD_LIBRARY_PATH", "LD_PRELOAD")
# What crosses into the host from a Flatpak sandbox (whose own environment names sandbox paths).
HOST_ENV_PREFIXES = ("NST_", "CUDA_", "OMP_", "ORT_")
HOST_ENV_DROPPED = ("NST_PYTHON",)  # names the host Python, which the host does not need told


class RuntimeNotFound(PlugInError):
    """No usable Python recorded (or none that may be started); the message names the fix."""


@dataclass(frozen=True)
class Host:
    """Where GIMP runs: ``system`` in sys.platform's spelling (linux, win32, darwin), and whether
    inside a Flatpak sandbox (then ``flatpak_info`` is the text of /.flatpak-info)."""

    system: str
    flatpak: bool = False
    flatpak_info: str = ""

    @classmethod
    def current(cls) -> Host:
        system = "linux" if sys.platform.startswith("linux") else sys.platform
        try:
            with open(FLATPAK_INFO, encoding="utf-8") as f:
                return cls(system, True, f.read())
        except OSError:
            return cls(system, os.path.exists(FLATPAK_INFO))

    def can_spawn_on_host(self) -> bool:
        """Whether the sandbox may call org.freedesktop.Flatpak (flatpak-spawn --host needs it).

        /.flatpak-info holds the permissions the app was started with, overrides included: the
        talk name under [Session Bus Policy], or the whole session bus under [Context] sockets.
        """
        if not self.flatpak:
            return True
        info = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            info.read_string(self.flatpak_info)
        except configparser.Error:
            return True  # unreadable: let flatpak-spawn try and report
        policy = info["Session Bus Policy"] if info.has_section("Session Bus Policy") else {}
        if policy.get("org.freedesktop.Flatpak", "") in ("talk", "own"):
            return True
        sockets = info.get("Context", "sockets", fallback="")
        return "session-bus" in sockets.split(";")


@dataclass
class Launch:
    """One worker start: the command line, its environment and folder, and the platform's flags."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    creationflags: int = 0
    die_with_parent: bool = False  # Linux: SIGTERM the child when the plug-in dies
    host: Host = field(default_factory=lambda: Host("linux"))

    def popen_kwargs(self) -> dict:
        """Keyword arguments for subprocess.Popen (pipes are the caller's business)."""
        kwargs: dict = {"env": self.env, "cwd": self.cwd}
        if self.creationflags:
            kwargs["creationflags"] = self.creationflags
        if self.die_with_parent:
            kwargs["preexec_fn"] = die_with_parent()
        return kwargs


def _python_from_json(path: str) -> str | None:
    """The "python" recorded in a runtime.json, or None when there is no such file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)["python"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeNotFound(f"{RUNTIME_HINT} ({path} is unreadable: {exc})") from exc


def recorded_pythons(plugin_dir: str, gimp_dir: str, environ: Mapping[str, str]) -> Iterator[tuple[str, str | None]]:
    """(where, python) in lookup order; `nst install-gimp-plugin` writes one of the JSON files."""
    yield "NST_PYTHON", environ.get("NST_PYTHON") or None
    beside = os.path.join(plugin_dir, RUNTIME_JSON)
    yield beside, _python_from_json(beside)
    user_json = os.path.join(gimp_dir, USER_RUNTIME_JSON)
    yield user_json, _python_from_json(user_json)


def find_runtime_python(
    plugin_dir: str, gimp_dir: str, environ: Mapping[str, str] | None = None, host: Host | None = None
) -> str:
    """NST_PYTHON, else runtime.json beside the plug-in, else <gimp dir>/nst-runtime.json.

    Inside a Flatpak the recorded path is a host path the sandbox may not see, so it is not checked.
    """
    environ = os.environ if environ is None else environ
    host = host or Host.current()
    for origin, python in recorded_pythons(plugin_dir, gimp_dir, environ):
        if python:
            if not host.flatpak and not (os.path.isfile(python) and os.access(python, os.X_OK)):
                raise RuntimeNotFound(f"{RUNTIME_HINT} ({python} from {origin} does not exist)")
            return python
    raise RuntimeNotFound(RUNTIME_HINT)


def worker_env(environ: Mapping[str, str], host: Host) -> dict[str, str]:
    """The user's environment without what GIMP or its bundle adds for its own Python."""
    dropped = set(DROPPED_ENV)
    if host.system == "darwin":
        dropped.update(DROPPED_ENV_DARWIN)
    if host.system == "linux" and ("APPIMAGE" in environ or "APPDIR" in environ):
        dropped.update(DROPPED_ENV_APPIMAGE)
    env = {k: v for k, v in environ.items() if k not in dropped}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def host_env_options(environ: Mapping[str, str]) -> list[str]:
    """flatpak-spawn --env options: only our own settings cross into the host's session environment."""
    passed = {"PYTHONUNBUFFERED": "1"}
    for key, value in environ.items():
        if key.startswith(HOST_ENV_PREFIXES) and key not in HOST_ENV_DROPPED:
            passed[key] = value
    return [f"--env={key}={value}" for key, value in sorted(passed.items())]


def python_command(python: str, module: str = WORKER_MODULE) -> list[str]:
    """``python -P -u -m module``: -P keeps the working folder off sys.path (no shadowing nst_runtime)."""
    return [python, "-P", "-u", "-m", module]


def worker_launch(
    python: str,
    host: Host | None = None,
    environ: Mapping[str, str] | None = None,
    module: str = WORKER_MODULE,
) -> Launch:
    """How to start ``module`` in ``python`` from GIMP on ``host`` (default: this one)."""
    host = host or Host.current()
    environ = os.environ if environ is None else environ
    env = worker_env(environ, host)
    command = python_command(python, module)
    if host.flatpak:
        home = environ.get("HOME") or os.path.expanduser("~")
        argv = ["flatpak-spawn", "--host", "--watch-bus", f"--directory={home}", *host_env_options(environ), *command]
        return Launch(argv, env, tempfile.gettempdir(), die_with_parent=True, host=host)
    if host.system == "win32":
        return Launch(command, env, tempfile.gettempdir(), creationflags=CREATE_NO_WINDOW, host=host)
    return Launch(command, env, tempfile.gettempdir(), die_with_parent=host.system == "linux", host=host)


def plugin_dir() -> str:
    """The plug-in's folder (runtime.json lies there after a copy install)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launch_for_gimp(gimp_dir: str, module: str = WORKER_MODULE) -> Launch:
    """The worker's start from this GIMP (``Gimp.directory()``): the recorded Python, this platform's way."""
    host = Host.current()
    python = find_runtime_python(plugin_dir(), gimp_dir, host=host)
    check_can_start(host)
    return worker_launch(python, host, module=module)


def flatpak_permission_message() -> str:
    return (
        f"GIMP runs as a Flatpak and may not start your Python on the host: run `{FLATPAK_OVERRIDE}`, then restart GIMP"
    )


def check_can_start(host: Host) -> None:
    """Raise RuntimeNotFound (with the fix) before a start that cannot work."""
    if not host.can_spawn_on_host():
        raise RuntimeNotFound(flatpak_permission_message())


def failure_hint(stderr_text: str, host: Host) -> str | None:
    """A message that names the fix for a worker that died without a protocol line, or None."""
    if any(word in stderr_text for word in NO_RUNTIME_WORDS):
        return f"{RUNTIME_HINT} (that Python has no nst_runtime)"
    if host.flatpak and any(word in stderr_text for word in FLATPAK_DENIED_WORDS):
        return flatpak_permission_message()
    return None


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGTERM the worker when the plug-in dies (Linux only).

    GIMP cancels a plug-in by killing it (SIGKILL after a 10 ms grace), so the plug-in gets no
    chance to stop its worker; the parent-death signal does it instead.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # libc's, loaded before the fork
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the plug-in died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def start(launch: Launch) -> subprocess.Popen:
    """Popen with binary pipes on all three streams."""
    return subprocess.Popen(
        launch.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **launch.popen_kwargs()
    )
