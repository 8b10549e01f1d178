"""A stand-in for ``python -m nst_runtime.worker`` that speaks docs/worker-protocol.md.

Used by the GIMP tests to exercise the plug-in's protocol handling (progress, errors, cancel)
without torch: the "stylized" result is the content with its colours inverted (alpha kept).
NST_STUB_STEP_S sets the delay per fake step, so a cancel test has time to act; NST_STUB_REQUEST
names a file to which each request (all but the content's pixels) is appended as a JSON line.
"""

import base64
import json
import os
import signal
import sys
import time

STEPS = 4
MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")


def emit(obj: dict) -> None:
    """Print one protocol line and flush it, as the real worker does."""
    print(json.dumps(obj), flush=True)


def fail(message: str, code: int = 1) -> None:
    emit({"error": message})
    sys.exit(code)


def on_term(signum: int, frame: object) -> None:
    fail("cancelled", 130)


def check_image(spec: dict, what: str) -> None:
    """Reject a path that is not an image file, with the real worker's wording."""
    if "path" in spec:
        with open(spec["path"], "rb") as f:
            head = f.read(8)
        if not head.startswith(MAGIC):
            fail(f"{what} file is not an image: {spec['path']}")


def main() -> None:
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    request = json.load(sys.stdin)
    if os.environ.get("NST_STUB_REQUEST"):  # the tests read what the plug-in sent (styles, masks)
        with open(os.environ["NST_STUB_REQUEST"], "a", encoding="utf-8") as f:
            f.write(json.dumps({k: v for k, v in request.items() if k != "content"}) + "\n")
    for style in request["styles"]:
        check_image(style, "style")
    content = request["content"]
    width, height = content["width"], content["height"]
    pixels = bytearray(base64.b64decode(content["rgba"]))
    if len(pixels) != width * height * 4:
        fail("content pixels do not match width x height")
    delay = float(os.environ.get("NST_STUB_STEP_S", "0.05"))
    emit({"event": "status", "message": "stub worker"})
    for step in range(1, STEPS + 1):
        time.sleep(delay)
        emit(
            {
                "event": "progress",
                "fraction": step / STEPS,
                "scale": 1,
                "scales": 1,
                "step": step,
                "steps": STEPS,
                "loss": 1000.0 / step,
                "message": f"scale 1/1, step {step}/{STEPS}",
            }
        )
    for i in range(0, len(pixels), 4):
        pixels[i] ^= 255
        pixels[i + 1] ^= 255
        pixels[i + 2] ^= 255
    emit({"done": {"width": width, "height": height, "rgba": base64.b64encode(bytes(pixels)).decode("ascii")}})


if __name__ == "__main__":
    main()
