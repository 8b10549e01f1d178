"""``python -m nst_runtime.worker``: the JSON-lines shell the GIMP plug-in drives.

Protocol: docs/worker-protocol.md. The request is the first JSON object on stdin; one JSON object
per line on stdout (events, then a final ``{"done": …}`` or ``{"error": …}``). Protocol 2 keeps
stdin open for commands: ``finish`` ends the run at once with the best image so far, ``cancel``
is SIGTERM, and stdin closing means the front end is gone (a cancel too). Protocol 1 requests
(no ``"protocol"``, stdin closed after the request) work as they always did.
A request with ``"estimate"`` instead of ``"content"`` answers time estimates (nst_runtime.estimate).
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

from .errors import Cancelled, NSTError, describe_failure

EXIT_ERROR = 1
EXIT_CANCELLED = 130
MAX_REQUEST_BYTES = 1 << 31
PROTOCOLS = (1, 2)
PREVIEW_MAX_SIDE = 512  # the protocol's limits: at most 512 px on the longest side, one a second
PREVIEW_MIN_SIDE = 16
PREVIEW_MIN_INTERVAL_S = 1.0
CANCEL_JOIN_S = 0.7  # the engine aborts its current graph run within ~0.1 s; never wait longer

_OPTION_KEYS = {
    "strength",
    "style_weight",
    "content_weight",
    "tv_weight",
    "size",
    "quality",
    "steps",
    "preserve_color",
    "seed",
    "device",
    "style_scale",
    "weights",
    "pooling",
    "optimizer",
    "init",
    "max_memory",
    "tile_size",
}


def log(message: str) -> None:
    print(f"nst worker: {message}", file=sys.stderr, flush=True)


class _Out:
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


@dataclass
class Job:
    """A parsed stylize request."""

    content: object
    styles: list
    options: object  # nst_runtime.options.Options
    out_path: object | None = None
    protocol: int = 1
    preview: PreviewSpec | None = None
    masks: list | None = None  # one per style (None: everywhere), see nst_runtime.regions
    style_masks: list | None = None


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


@dataclass(frozen=True)
class RawOutput:
    """Where to write the result as raw 8-bit RGBA rows (the plug-in's file hand-off)."""

    path: Path


def _image(spec: object, role: str) -> object:
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
        from .images import from_rgba_bytes

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
        from .images import from_rgba_bytes

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


def parse_options(options: object, n_styles: int, style_blend: object = None):
    """An ``Options`` from a request's "options" object (the keys of docs/worker-protocol.md)."""
    from .options import make_options

    options = options or {}
    if not isinstance(options, dict):
        raise NSTError("'options' must be an object")
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise NSTError(f"unknown option {unknown[0]!r}")
    values = {**_environment_options(), **options}
    if values.get("size") in (0, None):
        values["size"] = None
    init = values.pop("init", "content")
    if init not in ("content", "noise"):
        values["init_image"], init = init, "content"
    try:
        opts = make_options(style_blend=style_blend, init=init, **values)
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


def parse_request(text: str):
    """(content, styles, Options, output path or None) from the request JSON (protocol 1's view)."""
    job = parse_job(load_request(text))
    return job.content, job.styles, job.options, job.out_path


def _mask_list(request: dict, key: str, count: int) -> list | None:
    """``masks`` / ``style_masks``: a list with one IMAGE (or null: all of it) per style."""
    spec = request.get(key)
    if spec is None:
        return None
    if not isinstance(spec, list):
        raise NSTError(f"'{key}' must be a list with one image (or null) per style")
    if len(spec) != count:
        raise NSTError(f"'{key}' has {len(spec)} entries for {count} style image(s): give one per style")
    role = key.rstrip("s").replace("_", " ")
    return [None if m is None else _image(m, f"{role} {i + 1}") for i, m in enumerate(spec)]


def parse_job(request: dict) -> Job:
    """A stylize request as a Job (inputs decoded, options validated)."""
    content = _image(request.get("content"), "content")
    styles_spec = request.get("styles")
    if not isinstance(styles_spec, list) or not styles_spec:
        raise NSTError("request needs a non-empty 'styles' list")
    styles = [_image(s, "style") for s in styles_spec]
    opts = parse_options(request.get("options"), len(styles), request.get("style_blend"))
    output = request.get("output")
    out_path = None
    if output is not None:
        if isinstance(output, dict) and isinstance(output.get("rgba_path"), str) and output["rgba_path"]:
            out_path = RawOutput(_raw_output_path(output["rgba_path"]))
        elif isinstance(output, dict) and isinstance(output.get("path"), str):
            from .images import check_output_path

            out_path = check_output_path(output["path"])
        else:
            raise NSTError('\'output\' must be {"path": "…"} or {"rgba_path": "…"}')
    masks = _mask_list(request, "masks", len(styles))
    style_masks = _mask_list(request, "style_masks", len(styles))
    if out_path is not None:
        from .images import check_not_an_input

        inputs = [("content", content), *(("style", s) for s in styles), ("init image", opts.init_image)]
        inputs += [("mask", m) for m in (*(masks or ()), *(style_masks or ()))]
        check_not_an_input(out_path.path if isinstance(out_path, RawOutput) else out_path, inputs)
    protocol, preview = request.get("protocol", 1), parse_preview(request.get("preview"))
    return Job(content, styles, opts, out_path, protocol, preview, masks, style_masks)


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


def serve(job: Callable[[_Out, threading.Event], dict]) -> int:
    """Run ``job(out, cancel)`` in a thread and end with its one final line: done, error or cancelled.

    The main thread only waits, so SIGTERM/SIGINT set ``cancel`` at once; the job's return value
    is the "done" object. Shared by this worker (stylize and estimate requests) and the frame worker.
    """
    cancel = threading.Event()
    out = _Out(on_gone=cancel.set)
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


def main() -> int:
    def job(out: _Out, cancel: threading.Event) -> dict:
        request = load_request(read_request(sys.stdin.buffer))
        if "estimate" in request and "content" not in request:
            from .estimate import serve as serve_estimates

            return serve_estimates(request, out.send, sys.stdin.buffer, cancel)
        parsed = parse_job(request)
        finish = threading.Event()
        # protocol 2: stdin closing means the front end is gone, and nobody would take the result
        Commands(sys.stdin.buffer, finish, cancel, on_eof=cancel.set if parsed.protocol >= 2 else None).start()
        from . import prewarm

        prewarm.start(parsed.options.weights, parsed.options.pooling, parsed.options.device)
        from .engine import run

        result = run(
            parsed.content,
            parsed.styles,
            parsed.options,
            masks=parsed.masks,
            style_masks=parsed.style_masks,
            progress=_progress_sender(out.send, parsed.preview),
            cancel=cancel,
            finish=finish,
            preview_interval=parsed.preview.interval_s if parsed.preview else None,
        )
        return _done(result, parsed.out_path)

    return serve(job)


def _progress_sender(send: Callable[[dict], None], preview: PreviewSpec | None) -> Callable[[object], None]:
    """The engine's progress callback: every event as JSON, previews only when asked for and not too often."""
    import time

    last_preview = [-math.inf]

    def progress(event) -> None:
        if event.kind == "preview":
            now = time.monotonic()
            if preview is None or now - last_preview[0] < preview.interval_s * 0.95:
                return
            last_preview[0] = now
            send(preview_json(event, preview.max_side))
        else:
            send(_event_json(event))

    return progress


def _event_json(event) -> dict:
    if event.kind == "progress":
        data = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in event.to_json().items()}
        data["event"] = data.pop("kind")
        return data
    return {"event": event.kind, "message": event.message}


def _raw_output_path(text: str) -> Path:
    path = Path(text)
    if not path.parent.is_dir():
        raise NSTError(f"output directory does not exist: {path.parent}")
    if path.is_dir():
        raise NSTError(f"output path is a directory: {path}")
    return path


def _write_raw(image, path: Path) -> None:
    """Raw RGBA rows, written atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(image.convert("RGBA").tobytes())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise NSTError(f"cannot write {path}: {exc.strerror or exc}") from None


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


def _done(result, out_path) -> dict:
    image = result.image
    width, height = image.size
    extra = {"finished_early": bool(result.finished_early), "evaluations": int(result.evaluations)}
    if isinstance(out_path, RawOutput):
        _write_raw(image, out_path.path)
        return {"width": width, "height": height, "rgba_path": str(out_path.path), **extra}
    if out_path is not None:
        from .images import save_image

        save_image(image, out_path)
        return {"width": width, "height": height, "path": str(out_path), **extra}
    rgba = image.convert("RGBA").tobytes()
    return {"width": width, "height": height, "rgba": base64.b64encode(rgba).decode("ascii"), **extra}


def exit_with(main: Callable[[], int]) -> None:
    """Run a worker's main and leave at once: neither wait for a cancelled engine thread nor for torch's teardown."""
    code = EXIT_ERROR
    try:
        code = main()
    finally:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    exit_with(main)
