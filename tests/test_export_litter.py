"""A killed export leaves no litter: the next export removes its stale staging folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nst_export import ExportRequest, export_graphs
from nst_export.staging import EXPORT_MAX_S, OWNER_FILE, UNCHECKED_MAX_S, is_stale, make_staging, sweep

REPO = Path(__file__).resolve().parents[1]
SHALLOW = ("relu1_1",)  # the quickest real export: the net is cut after relu1_1


def age(path: Path, seconds: float) -> None:
    """Make a staging folder look ``seconds`` old (its owner record's time is its age)."""
    then = time.time() - seconds
    os.utime(path / OWNER_FILE if (path / OWNER_FILE).exists() else path, (then, then))


def dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def staged(folder: Path, owner: dict | None) -> Path:
    """A staging folder in ``folder`` with this owner record (None: none, as before owners were kept)."""
    staging = make_staging(folder)
    if owner is None:
        (staging / OWNER_FILE).unlink()
    else:
        (staging / OWNER_FILE).write_text(json.dumps(owner))
    (staging / "feature.onnx").write_bytes(b"\0" * 1024)
    return staging


def test_only_old_folders_of_gone_owners_are_stale(tmp_path: Path) -> None:
    host = socket.gethostname()
    mine = make_staging(tmp_path)  # this process: alive
    gone = staged(tmp_path, {"pid": dead_pid(), "host": host})
    elsewhere = staged(tmp_path, {"pid": 1, "host": host + "-another"})
    legacy = staged(tmp_path, None)
    for staging in (mine, gone, elsewhere, legacy):
        assert not is_stale(staging), f"{staging.name} is fresh: an export may still be writing it"
        age(staging, EXPORT_MAX_S + 60)
    assert not is_stale(mine), "its owner still runs"
    assert is_stale(gone) and is_stale(legacy)
    assert not is_stale(elsewhere), "an owner on another host cannot be checked: kept for a day"
    age(elsewhere, UNCHECKED_MAX_S + 60)
    assert sorted(sweep([tmp_path])) == sorted([gone, legacy, elsewhere])
    assert [p.name for p in tmp_path.iterdir()] == [mine.name]


def test_a_reused_pid_is_not_the_owner(tmp_path: Path) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("process start times are read from Linux's /proc")
    staging = make_staging(tmp_path)
    owner = json.loads((staging / OWNER_FILE).read_text())
    assert owner["pid"] == os.getpid() and owner["start_ticks"] is not None
    (staging / OWNER_FILE).write_text(json.dumps({**owner, "start_ticks": owner["start_ticks"] - 1}))
    age(staging, EXPORT_MAX_S + 60)
    assert is_stale(staging), "the pid runs, but a process started at another time has it"


@pytest.mark.slow
def test_a_killed_export_leaves_only_finished_graphs_after_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL a real `python -m nst_export` while it writes its graphs; an hour later (past any
    export's time) the next run exports again, and the cache then holds only the finished graphs."""
    cache = tmp_path / "cache"
    env = {**os.environ, "NST_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "nst_export", "--layers", ",".join(SHALLOW), "--quiet"]
    proc = subprocess.Popen(command, env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 300
        while not list(cache.glob("graphs/*/.export-*/*.onnx")):  # mid-export: a graph written, not published
            assert proc.poll() is None, f"the export ended ({proc.returncode}) before it could be killed"
            assert time.monotonic() < deadline, "no staging folder within 300 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    (litter,) = cache.glob("graphs/*/.export-*")
    assert not list(cache.glob("graphs/*/manifest.json")), "the export published before the kill"
    owner = json.loads((litter / OWNER_FILE).read_text())
    assert owner["pid"] == proc.pid
    folder = litter.parent

    monkeypatch.setenv("NST_CACHE_DIR", str(cache))
    age(litter, EXPORT_MAX_S + 60)
    result = export_graphs(ExportRequest(layers=SHALLOW))
    assert not result.reused and result.folder == folder
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == finished_graphs(cache, folder)
    # a run that reuses the graphs sweeps too (a killed try, then a try that finished the export)
    age(staged(folder, None), EXPORT_MAX_S + 60)
    assert export_graphs(ExportRequest(layers=SHALLOW)).reused
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == finished_graphs(cache, folder)


def finished_graphs(cache: Path, folder: Path) -> list[Path]:
    """What a cache holding one finished graph set holds: the folders, the graphs, the manifest."""
    manifest = json.loads((folder / "manifest.json").read_text())
    files = [folder / g["file"] for g in manifest["graphs"].values()] + [folder / "manifest.json"]
    return sorted(p.relative_to(cache) for p in [cache / "graphs", folder, *files])
