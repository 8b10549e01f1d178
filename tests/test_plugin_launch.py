"""How the plug-in starts the worker on each platform GIMP 3 runs on (no GIMP needed).

plugin/nst-style-transfer/nst_plugin/launch.py imports nothing from GIMP, so its command lines
and environments are checked here for Linux, Flatpak, Windows and macOS; only Linux's real GIMP
runs in tests/gimp.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugin" / "nst-style-transfer"


def plugin_module(name: str):
    """One of the plug-in's GIMP-free modules, imported from the plug-in folder as GIMP would."""
    sys.path.insert(0, str(PLUGIN_DIR))
    try:
        yield importlib.import_module(f"nst_plugin.{name}")
    finally:
        sys.path.remove(str(PLUGIN_DIR))


@pytest.fixture(scope="module")
def launch():
    yield from plugin_module("launch")


@pytest.fixture(scope="module")
def client(launch):
    yield from plugin_module("worker_client")


@pytest.fixture(scope="module")
def progress():
    yield from plugin_module("progress")


def test_progress_text_says_refining_detail_where_a_detail_step_has_no_loss(progress) -> None:
    step = {"event": "progress", "scale": 2, "scales": 3, "step": 40, "steps": 100, "eta_s": 80.4}
    assert progress.progress_text({**step, "loss": 123456.0}) == "scale 2/3, step 40/100 · loss 1.23e+05"
    detail = {**step, "step": 5, "loss": None, "phase": "detail", "message": "scale 2/3, step 5/100 (detail pass)"}
    assert progress.progress_text(detail, "Background: ") == "Background: scale 2/3, step 5/100 · refining detail"
    for loss in (None, float("nan"), "nan"):  # the worker sends null; nothing may read "nan"
        text = progress.progress_text({**step, "loss": loss}, eta=True)
        assert text == "scale 2/3, step 40/100 · 1:20 left" and "nan" not in text.lower()
    assert progress.progress_text({**step, "loss": 2.0}, loss=False) == "scale 2/3, step 40/100"
    frame = {**step, "frame": 1, "frames": 4, "loss": 2.0, "message": "frame 2/4, scale 2/3, step 40/100"}
    assert progress.progress_text(frame) == "frame 2/4, scale 2/3, step 40/100 · loss 2"
    assert progress.progress_text({"event": "status", "message": "loading"}, "a: ") == "a: loading"
    assert progress.progress_text({"event": "progress", "message": "warming up"}) == "warming up"
    assert progress.progress_text({"event": "status"}) is None
    assert progress.clock_text(None) == progress.clock_text(float("nan")) == progress.clock_text(-1) == ""


GIMP_ENV = {
    "HOME": "/home/u",
    "PATH": "/usr/bin",
    "GI_TYPELIB_PATH": "/usr/lib/girepository-1.0/",
    "PYTHONHOME": "/app",
    "PYTHONPATH": "/usr/lib/gimp/3.0/python",
    "LD_LIBRARY_PATH": "/tmp/.mount_gimp/usr/lib",
    "DYLD_LIBRARY_PATH": "/Applications/GIMP.app/Contents/Resources/lib",
    "NST_CACHE_DIR": "/home/u/cache",
    "NST_PYTHON": "/home/u/venv/bin/python",
    "CUDA_VISIBLE_DEVICES": "0",
    "XDG_DATA_DIRS": "/app/share",
}
FLATPAK_INFO_ALLOWED = "[Application]\nname=org.gimp.GIMP\n\n[Session Bus Policy]\norg.freedesktop.Flatpak=talk\n"
FLATPAK_INFO_DENIED = "[Application]\nname=org.gimp.GIMP\n\n[Context]\nshared=network;ipc;\nsockets=x11;wayland;\n"
PYTHON = "/home/u/venv/bin/python"


def test_linux_runs_the_module_with_a_parent_death_signal_and_a_clean_env(launch) -> None:
    start = launch.worker_launch(PYTHON, launch.Host("linux"), GIMP_ENV)
    assert start.argv == [PYTHON, "-P", "-u", "-m", "nst_runtime.worker"]
    assert start.die_with_parent and start.creationflags == 0
    for dropped in ("GI_TYPELIB_PATH", "PYTHONHOME", "PYTHONPATH"):
        assert dropped not in start.env
    assert start.env["PYTHONUNBUFFERED"] == "1"
    assert start.env["LD_LIBRARY_PATH"] == GIMP_ENV["LD_LIBRARY_PATH"], "a distribution's GIMP keeps the user's"
    assert start.env["NST_CACHE_DIR"] == "/home/u/cache"
    assert "preexec_fn" in start.popen_kwargs()


def test_an_appimage_drops_its_library_path(launch) -> None:
    start = launch.worker_launch(PYTHON, launch.Host("linux"), {**GIMP_ENV, "APPIMAGE": "/home/u/GIMP.AppImage"})
    assert "LD_LIBRARY_PATH" not in start.env


def test_flatpak_goes_through_flatpak_spawn_on_the_host(launch) -> None:
    host = launch.Host("linux", flatpak=True, flatpak_info=FLATPAK_INFO_ALLOWED)
    start = launch.worker_launch(PYTHON, host, GIMP_ENV)
    assert start.argv[:4] == ["flatpak-spawn", "--host", "--watch-bus", "--directory=/home/u"]
    assert start.argv[-5:] == [PYTHON, "-P", "-u", "-m", "nst_runtime.worker"]
    passed = [a for a in start.argv if a.startswith("--env=")]
    assert passed == sorted(passed)
    assert "--env=NST_CACHE_DIR=/home/u/cache" in passed and "--env=PYTHONUNBUFFERED=1" in passed
    assert "--env=CUDA_VISIBLE_DEVICES=0" in passed
    assert not any("XDG_DATA_DIRS" in a or "NST_PYTHON" in a or "PYTHONPATH" in a for a in passed), passed
    assert start.die_with_parent, "flatpak-spawn itself must die with the plug-in (it forwards the signal)"
    assert host.can_spawn_on_host()


def test_flatpak_without_the_talk_permission_names_the_override(launch) -> None:
    host = launch.Host("linux", flatpak=True, flatpak_info=FLATPAK_INFO_DENIED)
    assert not host.can_spawn_on_host()
    with pytest.raises(launch.RuntimeNotFound) as err:
        launch.check_can_start(host)
    assert launch.FLATPAK_OVERRIDE in str(err.value)
    assert launch.FLATPAK_OVERRIDE == "flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP"
    denied = "Portal call failed: org.freedesktop.DBus.Error.ServiceUnknown: org.freedesktop.Flatpak"
    assert launch.FLATPAK_OVERRIDE in launch.failure_hint(denied, host)
    whole_bus = FLATPAK_INFO_DENIED.replace("sockets=x11;wayland;", "sockets=x11;session-bus;")
    assert launch.Host("linux", True, whole_bus).can_spawn_on_host()


def test_flatpak_does_not_check_a_host_path_it_cannot_see(launch, tmp_path: Path) -> None:
    (tmp_path / "runtime.json").write_text(json.dumps({"python": "/host/only/python"}))
    host = launch.Host("linux", flatpak=True, flatpak_info=FLATPAK_INFO_ALLOWED)
    assert launch.find_runtime_python(str(tmp_path), str(tmp_path / "gimp"), {}, host) == "/host/only/python"
    with pytest.raises(launch.RuntimeNotFound, match="does not exist"):
        launch.find_runtime_python(str(tmp_path), str(tmp_path / "gimp"), {}, launch.Host("linux"))


def test_windows_starts_without_a_console_and_without_preexec_fn(launch) -> None:
    python = r"C:\Users\u\venv\Scripts\python.exe"
    start = launch.worker_launch(python, launch.Host("win32"), GIMP_ENV)
    assert start.argv == [python, "-P", "-u", "-m", "nst_runtime.worker"]
    kwargs = start.popen_kwargs()
    assert kwargs["creationflags"] == 0x08000000  # CREATE_NO_WINDOW
    assert "preexec_fn" not in kwargs and not start.die_with_parent
    assert "PYTHONHOME" not in start.env and "PYTHONPATH" not in start.env


def test_macos_drops_the_bundles_loader_paths(launch) -> None:
    start = launch.worker_launch(PYTHON, launch.Host("darwin"), GIMP_ENV)
    assert "DYLD_LIBRARY_PATH" not in start.env and "PYTHONHOME" not in start.env
    assert "preexec_fn" not in start.popen_kwargs() and "creationflags" not in start.popen_kwargs()


def test_lookup_order_nst_python_then_beside_then_gimp_dir(launch, tmp_path: Path) -> None:
    plugin, gimp = tmp_path / "plugin", tmp_path / "gimp"
    plugin.mkdir()
    gimp.mkdir()
    here = sys.executable
    (gimp / "nst-runtime.json").write_text(json.dumps({"python": here}))
    assert launch.find_runtime_python(str(plugin), str(gimp), {}, launch.Host("linux")) == here
    (plugin / "runtime.json").write_text(json.dumps({"python": "/nope/python"}))
    with pytest.raises(launch.RuntimeNotFound, match="/nope/python"):
        launch.find_runtime_python(str(plugin), str(gimp), {}, launch.Host("linux"))
    assert launch.find_runtime_python(str(plugin), str(gimp), {"NST_PYTHON": here}, launch.Host("linux")) == here
    (plugin / "runtime.json").write_text("{broken")
    with pytest.raises(launch.RuntimeNotFound, match="unreadable"):
        launch.find_runtime_python(str(plugin), str(gimp), {}, launch.Host("linux"))


STUB = """
import json, sys, time
request = json.loads(sys.stdin.readline())
print(json.dumps({"event": "status", "message": "up", "protocol": request["protocol"]}), flush=True)
for line in sys.stdin:
    if json.loads(line)["command"] == "finish":
        print(json.dumps({"done": {"width": 1, "height": 1, "rgba": "AAAA", "finished_early": True}}), flush=True)
        sys.exit(0)
    time.sleep(30)
"""


def test_the_client_sends_protocol_2_and_commands_on_an_open_stdin(launch, client, tmp_path: Path) -> None:
    stub = tmp_path / "stub.py"
    stub.write_text(STUB)
    start = launch.Launch([sys.executable, str(stub)], launch.worker_env({}, launch.Host("linux")), str(tmp_path))
    worker = client.WorkerProcess(start, {"content": {}})
    messages = worker.messages()
    first = next(messages)
    assert first["protocol"] == 2
    worker.send("finish")
    assert list(messages)[-1]["done"]["finished_early"]
    assert worker.outcome()["width"] == 1


def test_stop_ends_a_worker_that_ignores_commands_within_a_second(launch, client, tmp_path: Path) -> None:
    stub = tmp_path / "deaf.py"
    stub.write_text("import signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nsys.stdin.readline()\n"
                    "print('{\"event\": \"status\", \"message\": \"up\"}', flush=True)\ntime.sleep(60)\n")  # fmt: skip
    start = launch.Launch([sys.executable, str(stub)], launch.worker_env({}, launch.Host("linux")), str(tmp_path))
    worker = client.WorkerProcess(start, {})
    next(worker.messages())
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 1.0
    assert not worker.alive()
    with pytest.raises(client.Cancelled):
        worker.outcome()


def test_a_worker_killed_by_the_system_is_not_a_cancel(launch, client, tmp_path: Path) -> None:
    stub = tmp_path / "oom.py"
    stub.write_text("import os, signal, sys\nsys.stdin.readline()\nos.kill(os.getpid(), signal.SIGKILL)\n")
    start = launch.Launch([sys.executable, str(stub)], launch.worker_env({}, launch.Host("linux")), str(tmp_path))
    worker = client.WorkerProcess(start, {})
    assert list(worker.messages()) == []
    with pytest.raises(client.PlugInError, match="killed"):
        worker.outcome()
