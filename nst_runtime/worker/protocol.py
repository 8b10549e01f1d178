"""The JSON-lines protocol every worker speaks (docs/worker-protocol.md): reading the request,
decoding images and options, one JSON object per line out, commands on stdin, one final line.

Shared by the stylize worker (``python -m nst_runtime.worker``), the frame worker and the
estimate session. Nothing here imports torch.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import EXIT_CANCELLED, EXIT_ERROR, Cancelled, NSTError, describe_failure
from ..options import Options, make_options, option_fields, option_names

MAX_REQUEST_BYTES = 1 << 31
PROTOCOLS = (1, 2)
PREVIEW_MAX_SIDE = 512  # the protocol's limits: at most 512 px on the longest side, one a second
PREVIEW_MIN_SIDE = 16
PREVIEW_MIN_INTERVAL_S = 1.0
CANCEL_JOIN_S = 0.7  # the engine aborts its current graph run within ~0.1 s; never wait longer


def log(message: str) -> None:
    print(f"nst worker: {message}", file=sys.stderr, flush=True)


class LineWriter:
    """Line-buffered, thread-safe JSON output on the real stdout (nothing else may write there).

    A write that fails means the reader is gone (a killed plug-in): ``on_gone`` runs once, so the
    job stops instead of computing for nobody.
    """

    def __init__(self, on_gone: Callable[[], None] = lambda: None) -> None:
        self.stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
        sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
        self.lock = threading.Lock()
        self.on_gone = on_gone
        self.gone = False

    def send(self, obj: dict) -> None:
        line = json.dumps(obj, separators=(",", ":"))
        with self.lock:
            if self.gone:
                return
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                self.gone = True
                self.on_gone()


@dataclass(frozen=True)
class PreviewSpec:
    """What the request asked for: previews at most ``max_side`` px, at most one per ``interval_s``."""

    max_side: int = PREVIEW_MAX_SIDE
    interval_s: float = PREVIEW_MIN_INTERVAL_S


def read_request(stream: IO[bytes]) -> str:
    """The request: the first JSON object on stdin.

    Protocol 2 sends it as one line and keeps stdin open; protocol 1 clients may spread it over
    several lines and then close stdin. So lines are gathered until they parse, until they cannot
    parse whatever follows (an error before their end), or until stdin ends.
    """
    buffer = bytearray()
    while True:
        line = stream.readline(MAX_REQUEST_BYTES - len(buffer))
        buffer += line
        if not line or len(buffer) >= MAX_REQUEST_BYTES or _settled(buffer):
            return buffer.decode("utf-8", "replace")


def _settled(buffer: bytearray) -> bool:
    """Whether more lines cannot change the outcome: a complete object, or one already broken."""
    text = bytes(buffer).strip()
    if not text:
        return False
    if not text.startswith(b"{"):
        return True
    if not text.endswith(b"}"):
        return False  # every complete object ends so; parsing a partial one is wasted work
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return exc.pos < len(text.decode("utf-8", "replace")) - 1
    except ValueError:
        return True
    return True


def parse_image(spec: object, role: str) -> object:
    if not isinstance(spec, dict):
        raise NSTError(f"{role} must be an object with 'path', 'rgba' or 'rgba_path'")
    if "rgba_path" in spec:
        path = spec["rgba_path"]
        if not isinstance(path, str) or not path:
            raise NSTError(f"{role} rgba_path must be a non-empty string")
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise NSTError(f"{role} pixels cannot be read: {path} ({exc.strerror or exc})") from None
        from ..imaging.images import from_rgba_bytes

        return from_rgba_bytes(data, spec.get("width"), spec.get("height"), role)
    if "path" in spec:
        if not isinstance(spec["path"], str) or not spec["path"]:
            raise NSTError(f"{role} path must be a non-empty string")
        return spec["path"]
    if "rgba" in spec:
        try:
            data = base64.b64decode(spec["rgba"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise NSTError(f"{role} rgba is not valid base64") from None
        from ..imaging.images import from_rgba_bytes

        return from_rgba_bytes(data, spec.get("width"), spec.get("height"), role)
    raise NSTError(f"{role} must give 'path', 'rgba' or 'rgba_path'")


def _environment_options() -> dict[str, object]:
    """NST_MAX_MEMORY and NST_TILE_SIZE: defaults for a front end that has no such field (the
    GIMP dialog); the request's own options win."""
    values: dict[str, object] = {}
    if os.environ.get("NST_MAX_MEMORY"):
        values["max_memory"] = os.environ["NST_MAX_MEMORY"]
    if os.environ.get("NST_TILE_SIZE"):
        try:
            values["tile_size"] = int(os.environ["NST_TILE_SIZE"])
        except ValueError:
            raise NSTError(f"NST_TILE_SIZE must be an integer, got {os.environ['NST_TILE_SIZE']!r}") from None
    return values


def load_request(text: str) -> dict:
    """The request object, its protocol version checked."""
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise NSTError(f"request is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise NSTError("request must be a JSON object")
    version = request.get("protocol", 1)
    if version not in PROTOCOLS or isinstance(version, bool):
        raise NSTError(f"unsupported protocol {version!r}: this worker speaks {', '.join(map(str, PROTOCOLS))}")
    return request


def parse_options(options: object, n_styles: int, style_blend: object = None) -> Options:
    """An ``Options`` from a request's "options" object, whose keys are the option table's
    (``nst_runtime.options``); ``style_blend`` may also come beside it, at the request's top."""
    options = options or {}
    if not isinstance(options, dict):
        raise NSTError("'options' must be an object")
    unknown = sorted(set(options) - set(option_names("worker")))
    if unknown:
        raise NSTError(f"unknown option {unknown[0]!r}")
    values = {**_environment_options(), **options}
    for f, spec in option_fields(Options, "worker"):
        if spec.kind == "image" and values.get(f.name) is not None:
            values[f.name] = parse_image(values[f.name], f.name.replace("_", " "))
    if style_blend is not None:
        if values.get("style_blend") is not None:
            raise NSTError("give style_blend once: beside 'options' or in it")
        values["style_blend"] = style_blend
    try:
        opts = make_options(**values)
    except TypeError as exc:
        raise NSTError(f"bad option value: {exc}") from None
    return opts.validate(n_styles)


def parse_preview(spec: object) -> PreviewSpec | None:
    """The request's "preview" object: {"max_side": 16..512, "interval_s": >= 1.0}, both optional."""
    if spec is None or spec is False:
        return None
    if spec is True:
        return PreviewSpec()
    if not isinstance(spec, dict) or set(spec) - {"max_side", "interval_s"}:
        raise NSTError("'preview' must be an object with 'max_side' and/or 'interval_s'")
    max_side = spec.get("max_side", PREVIEW_MAX_SIDE)
    interval = spec.get("interval_s", PREVIEW_MIN_INTERVAL_S)
    if type(max_side) is not int or not PREVIEW_MIN_SIDE <= max_side <= PREVIEW_MAX_SIDE:
        raise NSTError(f"preview max_side must be an integer from {PREVIEW_MIN_SIDE} to {PREVIEW_MAX_SIDE}")
    if type(interval) not in (int, float) or not PREVIEW_MIN_INTERVAL_S <= interval < math.inf:
        raise NSTError(f"preview interval_s must be a number of at least {PREVIEW_MIN_INTERVAL_S} seconds")
    return PreviewSpec(max_side, float(interval))


class Commands:
    """Reads protocol-2 commands from stdin after the request, in a thread of its own."""

    def __init__(
        self,
        stream: IO[bytes],
        finish: threading.Event,
        cancel: threading.Event,
        on_eof: Callable[[], None] | None = None,
    ):
        self.stream, self.finish, self.cancel, self.on_eof = stream, finish, cancel, on_eof
        self.extra: Callable[[dict], None] | None = None  # other commands (the estimate session's queries)

    def start(self) -> None:
        threading.Thread(target=self._read, name="nst-commands", daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in self.stream:
                if raw.strip():
                    self.handle(raw)
        if self.on_eof is not None:
            self.on_eof()

    def handle(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            log(f"ignoring a line that is not JSON: {raw[:80]!r}")
            return
        command = msg.get("command") if isinstance(msg, dict) else None
        if command == "finish":
            self.finish.set()
        elif command == "cancel":
            self.cancel.set()
        elif self.extra is not None and isinstance(msg, dict):
            self.extra(msg)
        else:
            log(f"ignoring unknown command {command!r}")


def serve(job: Callable[[LineWriter, threading.Event], dict]) -> int:
    """Run ``job(out, cancel)`` in a thread and end with its one final line: done, error or cancelled.

    The main thread only waits, so SIGTERM/SIGINT set ``cancel`` at once; the job's return value
    is the "done" object. Shared by this worker (stylize and estimate requests) and the frame worker.
    """
    cancel = threading.Event()
    out = LineWriter(on_gone=cancel.set)
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: cancel.set())
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["done"] = job(out, cancel)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=work, name="nst-worker", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        if cancel.is_set():
            thread.join(CANCEL_JOIN_S)
            break
    if cancel.is_set() and "done" not in outcome:
        out.send({"error": "cancelled"})
        return EXIT_CANCELLED
    if "done" in outcome:
        out.send({"done": outcome["done"]})
        return 0
    exc = outcome.get("error")
    if isinstance(exc, Cancelled):
        out.send({"error": "cancelled"})
        return EXIT_CANCELLED
    out.send({"error": describe_failure(exc)})
    return EXIT_ERROR


def event_json(event) -> dict:
    if event.kind == "progress":
        data = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in event.to_json().items()}
        data["event"] = data.pop("kind")
        return data
    return {"event": event.kind, "message": event.message}


def preview_json(event, max_side: int) -> dict:
    """A Preview event as the protocol's preview line: RGBA (alpha 255), at most max_side px."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(event.rgb, dtype=np.float32)
    image = Image.fromarray((np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")
    if max(image.size) > max_side:
        factor = max_side / max(image.size)
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return {
        "event": "preview",
        "width": image.width,
        "height": image.height,
        "rgba": base64.b64encode(image.convert("RGBA").tobytes()).decode("ascii"),
        "scale": event.scale,
        "scales": event.scales,
        "step": event.step,
        "steps": event.steps,
    }


def exit_with(main: Callable[[], int]) -> None:
    """Run a worker's main and leave at once: neither wait for a cancelled engine thread nor for torch's teardown."""
    code = EXIT_ERROR
    try:
        code = main()
    finally:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
        os._exit(code)
