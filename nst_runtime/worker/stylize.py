"""``python -m nst_runtime.worker``: the JSON-lines shell the GIMP plug-in drives.

Protocol: docs/worker-protocol.md. The request is the first JSON object on stdin; one JSON object
per line on stdout (events, then a final ``{"done": …}`` or ``{"error": …}``). Protocol 2 keeps
stdin open for commands: ``finish`` ends the run at once with the best image so far, ``cancel``
is SIGTERM, and stdin closing means the front end is gone (a cancel too). Protocol 1 requests
(no ``"protocol"``, stdin closed after the request) work as they always did.
A request with ``"estimate"`` instead of ``"content"`` answers time estimates (``.estimates``).
"""

from __future__ import annotations

import base64
import math
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import NSTError
from .protocol import (
    Commands,
    LineWriter,
    PreviewSpec,
    event_json,
    load_request,
    log,
    parse_image,
    parse_options,
    parse_preview,
    preview_json,
    read_request,
    serve,
)


@dataclass
class StylizeRequest:
    """A parsed stylize request."""

    content: object
    styles: list
    options: object  # nst_runtime.options.Options
    out_path: object | None = None
    protocol: int = 1
    preview: PreviewSpec | None = None
    masks: list | None = None  # one per style (None: everywhere), see nst_runtime.regions
    style_masks: list | None = None


@dataclass(frozen=True)
class RawOutput:
    """Where to write the result as raw 8-bit RGBA rows (the plug-in's file hand-off)."""

    path: Path


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
    return [None if m is None else parse_image(m, f"{role} {i + 1}") for i, m in enumerate(spec)]


def parse_job(request: dict) -> StylizeRequest:
    """A stylize request (inputs decoded, options validated)."""
    content = parse_image(request.get("content"), "content")
    styles_spec = request.get("styles")
    if not isinstance(styles_spec, list) or not styles_spec:
        raise NSTError("request needs a non-empty 'styles' list")
    styles = [parse_image(s, "style") for s in styles_spec]
    opts = parse_options(request.get("options"), len(styles), request.get("style_blend"))
    output = request.get("output")
    out_path = None
    if output is not None:
        if isinstance(output, dict) and isinstance(output.get("rgba_path"), str) and output["rgba_path"]:
            out_path = RawOutput(_raw_output_path(output["rgba_path"]))
        elif isinstance(output, dict) and isinstance(output.get("path"), str):
            from ..imaging.images import check_output_path

            out_path = check_output_path(output["path"])
        else:
            raise NSTError('\'output\' must be {"path": "…"} or {"rgba_path": "…"}')
    masks = _mask_list(request, "masks", len(styles))
    style_masks = _mask_list(request, "style_masks", len(styles))
    if out_path is not None:
        from ..imaging.images import check_not_an_input

        inputs = [("content", content), *(("style", s) for s in styles), ("init image", opts.init_image)]
        inputs += [("mask", m) for m in (*(masks or ()), *(style_masks or ()))]
        check_not_an_input(out_path.path if isinstance(out_path, RawOutput) else out_path, inputs)
    protocol, preview = request.get("protocol", 1), parse_preview(request.get("preview"))
    return StylizeRequest(content, styles, opts, out_path, protocol, preview, masks, style_masks)


def main() -> int:
    def job(out: LineWriter, cancel: threading.Event) -> dict:
        request = load_request(read_request(sys.stdin.buffer))
        if "estimate" in request and "content" not in request:
            from .estimates import serve as serve_estimates

            return serve_estimates(request, out.send, sys.stdin.buffer, cancel)
        parsed = parse_job(request)
        # protocol 2: stdin closing means the front end is gone, and nobody would take the result
        commands = Commands(
            sys.stdin.buffer, threading.Event(), cancel, on_eof=cancel.set if parsed.protocol >= 2 else None
        )
        full_size = threading.Event()

        def other_command(msg: dict) -> None:
            if msg.get("command") != "full_size":
                log(f"ignoring unknown command {msg.get('command')!r}")
            elif not full_size.is_set():  # the run so far ends at once, and its image is continued
                full_size.set()
                commands.finish.set()

        commands.extra = other_command
        commands.start()
        from ..vgg import prewarm

        prewarm.start(parsed.options.weights, parsed.options.pooling, parsed.options.device)
        from ..engine.runner import run

        progress = progress_sender(out.send, parsed.preview)

        def stylize(options) -> object:
            return run(
                parsed.content,
                parsed.styles,
                options,
                masks=parsed.masks,
                style_masks=parsed.style_masks,
                progress=progress,
                cancel=cancel,
                finish=commands.finish,
                preview_interval=parsed.preview.interval_s if parsed.preview else None,
            )

        result = stylize(parsed.options)
        if full_size.is_set() and not cancel.is_set() and _larger_than(result, parsed.options):
            commands.finish = threading.Event()  # a finish from now on ends the continuation
            out.send({"event": "status", "message": "continuing the image to the full size"})
            continued = stylize(replace(parsed.options, size=None, init_image=None, continue_from=result.work))
            return {**_done(continued, parsed.out_path), "continued": True}
        return _done(result, parsed.out_path)

    return serve(job)


def progress_sender(send: Callable[[dict], None], preview: PreviewSpec | None) -> Callable[[object], None]:
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
            send(event_json(event))

    return progress


def _raw_output_path(text: str) -> Path:
    path = Path(text)
    if not path.parent.is_dir():
        raise NSTError(f"output directory does not exist: {path.parent}")
    if path.is_dir():
        raise NSTError(f"output path is a directory: {path}")
    return path


def _write_raw(image, path: Path) -> None:
    """Raw RGBA rows, written atomically (temp file + rename)."""
    from ..imaging.images import write_atomically

    write_atomically(image.convert("RGBA").tobytes(), path)


def _larger_than(result, options) -> bool:
    """Whether the content's own size is larger than the run's computation was."""
    return options.size is not None and result.work is not None and max(result.image.size) > max(result.work.shape[:2])


def _done(result, out_path) -> dict:
    from ..vgg.devices import device_label

    image = result.image
    width, height = image.size
    extra = {
        "finished_early": bool(result.finished_early),
        "evaluations": int(result.evaluations),
        "device": result.device,
        "device_label": device_label(result.device),
    }
    if isinstance(out_path, RawOutput):
        _write_raw(image, out_path.path)
        return {"width": width, "height": height, "rgba_path": str(out_path.path), **extra}
    if out_path is not None:
        from ..imaging.images import save_image

        save_image(image, out_path)
        return {"width": width, "height": height, "path": str(out_path), **extra}
    rgba = image.convert("RGBA").tobytes()
    return {"width": width, "height": height, "rgba": base64.b64encode(rgba).decode("ascii"), **extra}
