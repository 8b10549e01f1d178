"""Sizes and durations as people write and read them: "8G" in, "1.5 GiB" and "4 min 50 s" out."""

from __future__ import annotations

import math
import re

from .errors import NSTError

GIB = 1 << 30
MIB = 1 << 20
MIN_MEMORY = 64 * MIB  # no run fits in less

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_memory(text: str | int) -> int:
    """Bytes from '8G', '1500M', '512MiB', '2.5GB' or a plain number of bytes (units are binary)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(?:i?b)?\s*", str(text).lower())
        if not match:
            raise NSTError(f"max-memory must be a size like 8G or 1500M, got {text!r}")
        value = int(float(match.group(1)) * _UNITS[match.group(2)])
    if value < MIN_MEMORY:
        raise NSTError(f"max-memory must be at least {MIN_MEMORY // MIB}M, got {format_bytes(value)}")
    return value


def format_bytes(value: float) -> str:
    """'1.5 GiB' from a GiB on, else '750 MiB'."""
    if value >= GIB:
        return f"{value / GIB:.1f} GiB"
    return f"{value / MIB:.0f} MiB"


def format_duration(seconds: float) -> str:
    """'45 s', '4 min 50 s', '1 h 12 min': an estimate, in words."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_clock(seconds: float) -> str:
    """M:SS, or H:MM:SS from an hour on (a full-resolution job can take hours); ? when unknown."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
