"""What a worker's progress line says to the user (the status bar's and the dialog's text).

Plain Python, so that it is unit-tested without GIMP. A detail-pass step (``"phase": "detail"``)
has no loss of the whole objective (the worker sends null): it reads "refining detail" instead.
"""

from __future__ import annotations

import math


def _number(value: object) -> float | None:
    """A finite number from a JSON value (null, NaN and strings are none)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _counts(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def clock_text(seconds: object) -> str:
    """' · 1:20 left' from a worker's eta_s (nothing when unknown)."""
    value = _number(seconds)
    if value is None or value < 0:
        return ""
    minutes, secs = divmod(round(value), 60)
    return f" · {minutes}:{secs:02d} left"


def progress_text(event: dict, prefix: str = "", loss: bool = True, eta: bool = False) -> str | None:
    """'layer: scale 2/3, step 40/100 · loss 1.2e+05 · 1:20 left', or '… · refining detail', or the
    message of a status or note line; None when there is nothing to say."""
    if event.get("event") != "progress":
        message = event.get("message")
        return prefix + str(message) if message else None
    fields = [event.get(k) for k in ("scale", "scales", "step", "steps")]
    if all(_counts(f) for f in fields):
        scale, scales, step, steps = fields
        text = f"scale {scale}/{scales}, step {step}/{steps}"
        if _counts(event.get("frame")) and _counts(event.get("frames")):  # the frame worker's lines
            text = f"frame {event['frame'] + 1}/{event['frames']}, {text}"
    else:
        text = str(event.get("message") or "")
    value = _number(event.get("loss"))
    if event.get("phase") == "detail":
        text += " · refining detail"
    elif loss and value is not None:
        text += f" · loss {value:.3g}"
    if eta:
        text += clock_text(event.get("eta_s"))
    text = text.removeprefix(" · ")
    return prefix + text if text else None
