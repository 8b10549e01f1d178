"""Staging folders of an export in progress, and removing the ones a killed export left behind.

An export writes its graphs into ``<graph folder>/.export-*`` and moves them into place once they
are verified. A process killed on the way (``kill -9``, GIMP closed during a first run) leaves
that folder behind, about 99 MB for the default graphs. Each staging folder records its owner
(``owner.json``: pid, host, and on Linux the process's start time, which tells a reused pid
apart), and every export removes the stale ones: older than any export takes **and** whose
owner is gone. An owner this host cannot check (another host, Windows) counts as gone once the
folder is a day old.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path

from .owners import owner_alive, this_process

PREFIX = ".export-"
OWNER_FILE = "owner.json"
EXPORT_MAX_S = 3600.0  # the default export takes ~30 s on 2 cores; none takes an hour
UNCHECKED_MAX_S = 86400.0  # an owner that cannot be checked from here


def make_staging(folder: Path) -> Path:
    """A new staging folder inside ``folder``, recording this process as its owner."""
    staging = Path(tempfile.mkdtemp(prefix=PREFIX, dir=folder))
    (staging / OWNER_FILE).write_text(json.dumps(this_process()) + "\n", encoding="utf-8")
    return staging


def is_stale(staging: Path, now: float | None = None) -> bool:
    """Whether a staging folder is litter: older than any export, and its owner gone. A folder
    without a readable owner record (made before there were any, or killed while writing it)
    only has to be older than any export."""
    owner_file = staging / OWNER_FILE
    try:  # its age: since its owner was recorded (the folder's own mtime changes as graphs are written)
        age = (time.time() if now is None else now) - (owner_file if owner_file.exists() else staging).stat().st_mtime
    except OSError:
        return False
    try:
        owner = json.loads(owner_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none, or cut short by the kill
        owner = None
    if age <= EXPORT_MAX_S:
        return False
    if not isinstance(owner, dict):
        return True
    alive = owner_alive(owner)
    return alive is False or (alive is None and age > UNCHECKED_MAX_S)


def sweep(folders: list[Path]) -> list[Path]:
    """Remove the stale staging folders directly inside each of ``folders``; the ones removed."""
    removed = []
    for folder in dict.fromkeys(folders):
        with contextlib.suppress(OSError):
            for staging in folder.glob(PREFIX + "*"):
                if staging.is_dir() and not staging.is_symlink() and is_stale(staging):
                    shutil.rmtree(staging, ignore_errors=True)
                    removed.append(staging)
    return removed
