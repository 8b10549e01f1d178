"""``python -m nst_runtime.worker``: the JSON-lines shell the GIMP plug-in drives.

Protocol: docs/worker-protocol.md. One request on stdin; one JSON event per line on stdout;
a final ``{"done": …}`` or ``{"error": …}``. SIGTERM/SIGINT cancel within a second.
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
from typing import NamedTuple

from .errors import Cancelled, NSTError, describe_failure

EXIT_ERROR = 1
EXIT_CANCELLED = 130
MAX_REQUEST_BYTES = 1 << 31

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
}


class _Out:
    """Line-buffered, thread-safe JSON output on the real stdout (nothing else may write there)."""

    def __init__(self) -> None:
        self.stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
        sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
        self.lock = threading.Lock()

    def send(self, obj: dict) -> None:
        line = json.dumps(obj, separators=(",", ":"))
        with self.lock, contextlib.suppress(OSError):  # the reader is gone (a killed plug-in): nothing to tell
            self.stream.write(line + "\n")
            self.stream.flush()


def _image(spec: object, role: str) -> object:
    if not isinstance(spec, dict):
        raise NSTError(f"{role} must be an object with 'path' or 'rgba'")
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
    raise NSTError(f"{role} must give 'path' or 'rgba'")


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


class Request(NamedTuple):
    content: object
    styles: list
    options: object  # Options
    output: object  # Path or None
    masks: list | None = None
    style_masks: list | None = None


def parse_request(text: str):
    """(content, styles, Options, output path or None) from the request JSON."""
    return tuple(parse_job(text))[:4]


def parse_job(text: str) -> Request:
    """The whole request: content, styles, Options, output path or None, masks, style masks."""
    from .options import make_options

    try:
        request = json.loads(text)
    except ValueError as exc:
        raise NSTError(f"request is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise NSTError("request must be a JSON object")
    content = _image(request.get("content"), "content")
    styles_spec = request.get("styles")
    if not isinstance(styles_spec, list) or not styles_spec:
        raise NSTError("request needs a non-empty 'styles' list")
    styles = [_image(s, "style") for s in styles_spec]
    options = request.get("options") or {}
    if not isinstance(options, dict):
        raise NSTError("'options' must be an object")
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise NSTError(f"unknown option {unknown[0]!r}")
    values = dict(options)
    if values.get("size") in (0, None):
        values["size"] = None
    init = values.pop("init", "content")
    if init not in ("content", "noise"):
        values["init_image"], init = init, "content"
    try:
        opts = make_options(style_blend=request.get("style_blend"), init=init, **values)
    except TypeError as exc:
        raise NSTError(f"bad option value: {exc}") from None
    opts.validate(len(styles))
    output = request.get("output")
    out_path = None
    if output is not None:
        if not isinstance(output, dict) or not isinstance(output.get("path"), str):
            raise NSTError('\'output\' must be {"path": "…"}')
        from .images import check_not_an_input, check_output_path

        out_path = check_output_path(output["path"])
    masks = _mask_list(request, "masks", len(styles))
    style_masks = _mask_list(request, "style_masks", len(styles))
    if out_path is not None:
        inputs = [("content", content), *(("style", s) for s in styles), ("init image", opts.init_image)]
        inputs += [("mask", m) for m in (*(masks or ()), *(style_masks or ()))]
        check_not_an_input(out_path, inputs)
    return Request(content, styles, opts, out_path, masks, style_masks)


def serve(job: Callable[[_Out, threading.Event], dict]) -> int:
    """Run ``job(out, cancel)`` in a thread and end with its one final line: done, error or cancelled.

    The main thread only waits, so SIGTERM/SIGINT set ``cancel`` at once; the job's return value
    is the "done" object. Shared by this worker and the frame worker.
    """
    out = _Out()
    cancel = threading.Event()
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
            thread.join(0.7)  # the engine aborts its current graph run within ~0.1 s; never wait longer
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
        request = parse_job(sys.stdin.read(MAX_REQUEST_BYTES))
        options = request.options
        from . import prewarm

        prewarm.start(options.weights, options.pooling, options.device)
        from .engine import run

        result = run(
            request.content, request.styles, options, masks=request.masks, style_masks=request.style_masks,
            progress=lambda e: out.send(_event_json(e)), cancel=cancel,
        )  # fmt: skip
        return _done(result.image, request.output)

    return serve(job)


def _event_json(event) -> dict:
    if event.kind == "progress":
        data = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in event.to_json().items()}
        data["event"] = data.pop("kind")
        return data
    return {"event": event.kind, "message": event.message}


def _done(image, out_path) -> dict:
    width, height = image.size
    if out_path is not None:
        from .images import save_image

        save_image(image, out_path)
        return {"width": width, "height": height, "path": str(out_path)}
    rgba = image.convert("RGBA").tobytes()
    return {"width": width, "height": height, "rgba": base64.b64encode(rgba).decode("ascii")}


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
