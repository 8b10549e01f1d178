"""``python -m nst_runtime.frame_worker``: the JSON-lines shell for animations (the GIMP frames procedure).

Like ``nst_runtime.worker`` (docs/worker-protocol.md), with ``"frames": [IMAGE, ...]`` instead of
``"content"``, plus ``"temporal_weight"`` and ``"frame_steps"``. Each finished frame is sent at
once as ``{"event": "frame", "index": i, "width", "height", "rgba"}`` (alpha passed through);
progress events carry ``"frame"`` and ``"frames"`` and a ``fraction`` of the whole animation.
The last line is ``{"done": {"frames": n}}`` or ``{"error": …}``. SIGTERM/SIGINT cancel.
"""

from __future__ import annotations

import base64
import json
import sys

from ..errors import NSTError
from ..options import FrameOptions, option_names
from .protocol import MAX_REQUEST_BYTES, event_json, parse_image, serve
from .stylize import parse_request


def parse_frames_request(text: str):
    """(frames, styles, Options, FrameOptions); options are checked as the worker checks them, and
    ``temporal_weight`` and ``frame_steps`` (the keys of ``options.FrameOptions``) beside them."""
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise NSTError(f"request is not valid JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("frames"), list) or not request["frames"]:
        raise NSTError("request needs a non-empty 'frames' list")
    frames = [parse_image(f, f"frame {i + 1}") for i, f in enumerate(request["frames"])]
    extra = {k: request.pop(k) for k in option_names("worker", FrameOptions) if k in request}
    request["content"] = request.pop("frames")[0]  # the worker's own checks for styles and options
    _, styles, options, _ = parse_request(json.dumps(request))
    return frames, styles, options, FrameOptions(**extra).validate()


def main() -> int:
    def job(out, cancel) -> dict:
        frames, styles, options, frame_options = parse_frames_request(sys.stdin.read(MAX_REQUEST_BYTES))
        from ..vgg import prewarm

        prewarm.start(options.weights, options.pooling, options.device)
        from ..engine.animation import stylize_frames  # after the prewarm: it imports torch

        count = len(frames)

        def progress(e) -> None:
            data = event_json(e.event)
            if data["event"] == "progress":
                data["fraction"] = (e.frame + (data.get("fraction") or 0.0)) / count
                data["message"] = f"frame {e.frame + 1}/{count}, {data.get('message', '')}"
            out.send({**data, "frame": e.frame, "frames": count})

        for done in stylize_frames(
            frames, styles, options, temporal_weight=frame_options.temporal_weight,
            frame_steps=frame_options.frame_steps, count=count, progress=progress, cancel=cancel,
        ):  # fmt: skip
            width, height = done.image.size
            rgba = base64.b64encode(done.image.convert("RGBA").tobytes()).decode("ascii")
            message = f"frame {done.index + 1}/{count} done"
            out.send({"event": "frame", "message": message, "index": done.index, "width": width,
                      "height": height, "rgba": rgba})  # fmt: skip
        return {"frames": count}

    return serve(job)
