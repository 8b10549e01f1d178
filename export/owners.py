"""Who made a temporary file or folder, and whether that process still runs: how a killed run's
litter is told apart from a run still writing (``staging`` here, the runtime's temp files)."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path


def start_ticks(pid: int) -> int | None:
    """A Linux process's start time (clock ticks since boot), None when unknown or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def host_tag() -> str:
    """This host, short enough for a file name."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def this_process() -> dict:
    """The record of this process as an owner: pid, host and (on Linux) start time."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "start_ticks": start_ticks(os.getpid())}


def owner_alive(owner: dict) -> bool | None:
    """Whether the recorded owner still runs: True, False, or None when this host cannot tell.

    ``owner`` has "pid" and "host" (a host name, or ``host_tag()``'s short form), and may have
    "start_ticks", which tells a reused pid apart on Linux."""
    pid = owner.get("pid")
    host = owner.get("host")
    if not isinstance(pid, int) or host not in (socket.gethostname(), host_tag()) or os.name != "posix":
        return None
    if Path("/proc/self/stat").exists():  # Linux: a zombie, or another process under the same pid, is not it
        ticks = start_ticks(pid)
        return ticks is not None and owner.get("start_ticks") in (None, ticks)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OSError:
        return None
    return True
