"""A killed run leaves nothing behind: the temp files of its outputs are removed by the next write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nst_export.owners import this_process
from nst_runtime.imaging.images import UNCHECKED_TEMP_S, sweep_temps, temp_beside, write_atomically

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from nst_runtime.imaging.images import temp_beside
target = Path(sys.argv[1])
with open(temp_beside(target), "wb") as f:  # what write_atomically does first, then a kill -9
    f.write(b"half a result")
    f.flush()
    print("written", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_temp_file_of_a_killed_writer_goes_with_the_next_write(tmp_path: Path) -> None:
    out = tmp_path / "result.png"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL and proc.stdout.strip() == "written"
    litter = [p for p in tmp_path.iterdir() if p.name.startswith(".result.png.nst-")]
    assert len(litter) == 1 and not out.exists()
    write_atomically(b"the result", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]
    assert out.read_bytes() == b"the result"


def test_a_write_in_progress_and_other_files_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "result.png"
    mine = temp_beside(out)  # this process is alive: a write in progress
    mine.write_bytes(b"")
    other_file = tmp_path / ".result.png.nst-notes.tmp"  # not one of ours: never touched
    other_file.write_bytes(b"")
    other_target = tmp_path / ".other.png.nst-1-x-00000000-000000.tmp"
    other_target.write_bytes(b"")
    unknown_host = tmp_path / f".result.png.nst-{os.getpid()}-x-ffffffff-abcdef.tmp"
    unknown_host.write_bytes(b"")
    assert sweep_temps(out) == []
    then = time.time() - UNCHECKED_TEMP_S - 60
    os.utime(unknown_host, (then, then))
    assert sweep_temps(out) == [unknown_host], "a writer this host cannot check: litter after a day"
    assert mine.exists() and other_file.exists() and other_target.exists()
    assert this_process()["pid"] == os.getpid()
