"""A stand-in for ``python -m nst_runtime.worker`` that speaks docs/worker-protocol.md (protocol 2).

Used by the GIMP tests to exercise the plug-in's protocol handling (progress, previews, errors,
finish, cancel) without torch: the "stylized" result is the content with its colours inverted
(alpha kept), and a preview is the content
inverted down to the current step's share of its rows. NST_STUB_STEP_S sets the delay per fake
step and NST_STUB_STEPS their number, so a test has time to act. NST_STUB_REQUEST names a file
to which each request (all but the content's pixels) is appended as a JSON line.
"""

import base64
import json
import os
import signal
import sys
import threading

STEPS = int(os.environ.get("NST_STUB_STEPS", "4"))
LABELS = {"cpu": "CPU", "openvino-bf16+cpu": "CPU, OpenVINO bf16 with an fp32 finish"}
_device = os.environ.get("NST_STUB_DEVICE", "cpu")
DEVICE = {"device": _device, "device_label": LABELS.get(_device, _device)}  # what its estimates were priced on
MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")
finish = threading.Event()
full_size = threading.Event()  # the run so far ends and its image is continued (another STEPS steps)
lock = threading.Lock()


def emit(obj: dict) -> None:
    """Print one protocol line and flush it, as the real worker does."""
    with lock:
        print(json.dumps(obj), flush=True)


def fail(message: str, code: int = 1) -> None:
    emit({"error": message})
    os._exit(code)


def on_term(signum: int, frame: object) -> None:
    fail("cancelled", 130)


def check_image(spec: dict, what: str) -> None:
    """Reject a path that is not an image file, with the real worker's wording."""
    if "path" in spec:
        with open(spec["path"], "rb") as f:
            head = f.read(8)
        if not head.startswith(MAGIC):
            fail(f"{what} file is not an image: {spec['path']}")


def commands(cancel_on_eof: bool) -> None:
    for line in sys.stdin:
        command = json.loads(line).get("command")
        if command == "finish":
            finish.set()
        elif command == "full_size" and not full_size.is_set():
            full_size.set()
            finish.set()
        elif command == "cancel":
            fail("cancelled", 130)
    if cancel_on_eof:
        fail("cancelled", 130)


def estimates(query: dict) -> None:
    """The estimate session: a made-up price for every query line until stdin closes."""
    count = 0
    while query is not None:
        scale = {"width": query["width"], "height": query["height"], "steps": STEPS}
        reply = {"id": query.get("id"), "seconds": 1.0, "duration": "about 1 s", "scales": [scale], **DEVICE}
        emit({"estimate": reply})
        count += 1
        line = sys.stdin.readline()
        query = json.loads(line).get("estimate") if line.strip() else None
    emit({"done": {"estimates": count}})
    os._exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    request = json.loads(sys.stdin.readline())
    if os.environ.get("NST_STUB_REQUEST"):  # the tests read what the plug-in sent (styles, masks)
        with open(os.environ["NST_STUB_REQUEST"], "a", encoding="utf-8") as f:
            f.write(json.dumps({k: v for k, v in request.items() if k != "content"}) + "\n")
    if "estimate" in request:
        estimates(request["estimate"])
    threading.Thread(target=commands, args=(request.get("protocol", 1) >= 2,), daemon=True).start()
    for style in request["styles"]:
        check_image(style, "style")
    content = request["content"]
    width, height = content["width"], content["height"]
    pixels = bytearray(base64.b64decode(content["rgba"]))
    if len(pixels) != width * height * 4:
        fail("content pixels do not match width x height")
    original = bytes(pixels)
    for i in range(0, len(pixels), 4):
        pixels[i] ^= 255
        pixels[i + 1] ^= 255
        pixels[i + 2] ^= 255
    delay = float(os.environ.get("NST_STUB_STEP_S", "0.05"))
    emit({"event": "status", "message": "stub worker"})
    run_steps(STEPS, delay, width, height, pixels, original, bool(request.get("preview")), 1)
    continued = full_size.is_set()
    if continued:  # as the real worker: the preview so far continues at the content's own size
        finish.clear()
        emit({"event": "status", "message": "continuing the image to the full size"})
        run_steps(STEPS, delay, width, height, pixels, original, bool(request.get("preview")), 2)
    done = {"width": width, "height": height, "rgba": base64.b64encode(bytes(pixels)).decode("ascii")}
    emit({"done": {**done, "finished_early": finish.is_set(), **({"continued": True} if continued else {})}})
    os._exit(0)


def run_steps(
    steps: int, delay: float, width: int, height: int, pixels: bytearray, original: bytes, preview: bool, scale: int
) -> None:
    """Fake steps with progress (and previews): until the last or until ``finish``."""
    for step in range(1, steps + 1):
        if finish.wait(delay):
            break
        emit(
            {
                "event": "progress",
                "fraction": step / steps,
                "scale": scale,
                "scales": scale,
                "step": step,
                "steps": steps,
                "loss": 1000.0 / step,
                "eta_s": delay * (steps - step),
                "message": f"scale {scale}/{scale}, step {step}/{steps}",
            }
        )
        if preview:  # the inverted rows grow with the steps, so previews differ
            split = height * step // steps * width * 4
            preview_rgba = base64.b64encode(bytes(pixels[:split]) + original[split:]).decode()
            emit({"event": "preview", "width": width, "height": height, "rgba": preview_rgba})


if __name__ == "__main__":
    main()
