#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Artistic > Neural Style Transfer…

GIMP's own Python has neither numpy nor torch, so this plug-in holds no ML code. It reads the
selected layers' pixels, runs ``python -m nst_runtime.worker`` in the user's own Python (the one
that `nst install-gimp-plugin` recorded) and talks to it with the JSON-lines protocol of
docs/worker-protocol.md: pixels go inline as base64 RGBA, progress events drive GIMP's progress
bar, and the result comes back inline and becomes a new layer above each source layer.

The image is touched only after every worker has answered "done", inside one undo group.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import IO

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GimpUi, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the plug-in folder's own modules
import nst_frames  # noqa: E402
import nst_regions  # noqa: E402

PROC_NAME = "python-fu-nst-style-transfer"
PIXEL_FORMAT = "R'G'B'A u8"  # sRGB-encoded 8-bit RGBA: what the worker protocol carries
RUNTIME_HINT = "runtime not found: run `nst install-gimp-plugin`"
WORKER_MODULE = "nst_runtime.worker"
# GIMP (or its bundle: AppImage, flatpak, the macOS and Windows builds) sets these for its own
# Python; in the user's Python they would load the wrong typelibs or the wrong standard library.
DROPPED_ENV = ("GI_TYPELIB_PATH", "PYTHONHOME", "PYTHONPATH")
TERMINATE_GRACE_S = 1.5
EXIT_CANCELLED = 130  # the worker's exit code after SIGTERM/SIGINT
PR_SET_PDEATHSIG = 1

QUALITIES = (("draft", "Draft"), ("normal", "Normal"), ("high", "High"))
PRESERVE_COLORS = (("none", "None"), ("luminance", "Luminance"), ("histogram", "Histogram"))
DEVICES = (("auto", "Automatic"), ("cpu", "CPU"), ("cuda", "CUDA GPU"))


class PlugInError(Exception):
    """A failure to show the user as is; status says which PDB status it maps to."""

    def __init__(self, message: str, status: Gimp.PDBStatusType = Gimp.PDBStatusType.EXECUTION_ERROR) -> None:
        super().__init__(message)
        self.status = status


class Cancelled(Exception):
    """The worker stopped on SIGTERM/SIGINT before finishing."""


def log(message: str) -> None:
    """Plug-in stderr ends up on GIMP's terminal: the only place for diagnostics."""
    print(f"[nst-style-transfer] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- finding the runtime


def _python_from_json(path: str) -> str | None:
    """The "python" recorded in a runtime.json, or None when there is no such file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)["python"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlugInError(f"{RUNTIME_HINT} ({path} is unreadable: {exc})") from exc


def _recorded_pythons() -> Iterator[tuple[str, str | None]]:
    """(where, python) in lookup order; `nst install-gimp-plugin` writes one of the JSON files."""
    yield "NST_PYTHON", os.environ.get("NST_PYTHON") or None
    beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime.json")
    yield beside, _python_from_json(beside)
    user_json = os.path.join(Gimp.directory(), "nst-runtime.json")
    yield user_json, _python_from_json(user_json)


def find_runtime_python() -> str:
    """NST_PYTHON, else runtime.json beside this file, else <gimp dir>/nst-runtime.json."""
    for origin, python in _recorded_pythons():
        if python:
            if not (os.path.isfile(python) and os.access(python, os.X_OK)):
                raise PlugInError(f"{RUNTIME_HINT} ({python} from {origin} does not exist)")
            return python
    raise PlugInError(RUNTIME_HINT)


def worker_env() -> dict[str, str]:
    """The user's environment without what GIMP adds for its own Python."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---------------------------------------------------------------- the worker process


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGTERM the worker when the plug-in dies (Linux only).

    GIMP cancels a plug-in by killing it (SIGKILL after a 10 ms grace), so the plug-in gets no
    chance to stop its worker; the parent-death signal does it instead.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # libc's, loaded before the fork
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the plug-in died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _feed(stream: IO[bytes], data: bytes) -> None:
    """Write the request and close stdin (in a thread: a pipe holds only 64 KiB)."""
    with contextlib.suppress(BrokenPipeError, OSError):
        stream.write(data)
    with contextlib.suppress(BrokenPipeError, OSError):
        stream.close()


def _drain(stream: IO[bytes], tail: collections.deque[str]) -> None:
    """Keep the worker's last stderr lines for error messages and echo them to GIMP's terminal."""
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip()
        tail.append(line)
        print(f"[nst worker] {line}", file=sys.stderr, flush=True)


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM (the worker stops within a second), then SIGKILL if it does not."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(TERMINATE_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _parse(raw: bytes) -> dict | None:
    """One protocol line as a dict, or None for anything else (readers ignore the unknown)."""
    try:
        msg = json.loads(raw)
    except ValueError:
        log(f"worker printed a non-JSON line: {raw[:200]!r}")
        return None
    return msg if isinstance(msg, dict) else None


def _failure_message(returncode: int, tail: collections.deque[str]) -> str:
    """Explain a worker that ended without its final line."""
    text = "\n".join(tail)
    if f"No module named '{WORKER_MODULE.split('.')[0]}'" in text or f"No module named {WORKER_MODULE}" in text:
        return f"{RUNTIME_HINT} (that Python has no nst_runtime)"
    last = next((line for line in reversed(tail) if line.strip()), "no message")
    return f"the style transfer worker failed (exit code {returncode}): {last}"


def run_worker(python: str, request: dict, on_event: Callable[[dict], None], module: str = WORKER_MODULE) -> dict:
    """Run one job in ``python -m module``; call on_event for each event line; return the "done" object."""
    cmd = [python, "-u", "-m", module]
    log("running " + " ".join(cmd))
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_env(),
            cwd=tempfile.gettempdir(),  # never a folder whose nst_runtime/ would shadow the installed one
            preexec_fn=_die_with_parent(),
        )
    except OSError as exc:
        raise PlugInError(f"{RUNTIME_HINT} ({python}: {exc.strerror})") from exc
    tail: collections.deque[str] = collections.deque(maxlen=30)
    threads = [
        threading.Thread(target=_feed, args=(proc.stdin, json.dumps(request).encode()), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True),
    ]
    for t in threads:
        t.start()
    final = None
    iterating = False
    try:
        for raw in proc.stdout:
            msg = _parse(raw)
            if msg is None:
                continue
            if "done" in msg or "error" in msg:
                final = msg
            elif "event" in msg:
                if msg["event"] != "progress" or not iterating:  # stages go to GIMP's terminal too
                    log(f"worker {msg['event']}: {msg.get('message')}")
                    iterating = msg["event"] == "progress"
                on_event(msg)
        returncode = proc.wait()
    finally:
        _terminate(proc)
        for t in threads:
            t.join(1.0)
    if final is not None and "done" in final:
        return final["done"]
    if final is not None:
        message = str(final["error"])
        if message == "cancelled":
            raise Cancelled(message)
        raise PlugInError(message)
    if returncode in (-signal.SIGTERM, -signal.SIGINT, EXIT_CANCELLED):  # stopped before it could say so
        raise Cancelled("cancelled")
    raise PlugInError(_failure_message(returncode, tail))


# ---------------------------------------------------------------- pixels and layers


def read_rgba(drawable: Gimp.Drawable) -> bytes:
    """The drawable's pixels as sRGB-encoded RGBA bytes (GEGL converts any precision)."""
    w, h = drawable.get_width(), drawable.get_height()
    rect = Gegl.Rectangle.new(0, 0, w, h)
    return bytes(drawable.get_buffer().get(rect, 1.0, PIXEL_FORMAT, Gegl.AbyssPolicy.CLAMP))


def inline_image(drawable: Gimp.Drawable) -> dict:
    """A protocol IMAGE object carrying the drawable's pixels."""
    return {
        "rgba": base64.b64encode(read_rgba(drawable)).decode("ascii"),
        "width": drawable.get_width(),
        "height": drawable.get_height(),
    }


def style_title(path: str) -> str:
    """'starry_night.jpg' -> 'Starry Night': the result layer is named after the style."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return " ".join(stem.replace("_", " ").replace("-", " ").split()).title() or stem


def decode_result(done: dict, src: Gimp.Layer) -> bytes:
    """The inline result's bytes, checked against the source layer's size."""
    w, h = src.get_width(), src.get_height()
    if done.get("width") != w or done.get("height") != h or "rgba" not in done:
        raise PlugInError(f"the worker returned a {done.get('width')}x{done.get('height')} result for a {w}x{h} layer")
    pixels = base64.b64decode(done["rgba"])
    if len(pixels) != w * h * 4:
        raise PlugInError("the worker returned a truncated result")
    return pixels


def add_result_layer(
    image: Gimp.Image, src: Gimp.Layer, name: str, pixels: bytes, mask_with_selection: bool
) -> Gimp.Layer:
    """Insert the result above src, same size and offsets; mask it by the selection if asked."""
    w, h = src.get_width(), src.get_height()
    layer = Gimp.Layer.new(image, name, w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, src.get_parent(), image.get_item_position(src))
    _, ox, oy = src.get_offsets()
    layer.set_offsets(ox, oy)
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), PIXEL_FORMAT, pixels)
    buf.flush()
    if mask_with_selection:
        # a mask made from the selection keeps its feathered edge and stays editable
        layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
    layer.update(0, 0, w, h)
    return layer


# ---------------------------------------------------------------- the job


def _choice(nick_label_pairs: tuple[tuple[str, str], ...]) -> Gimp.Choice:
    """A Gimp.Choice whose nicks are the protocol's option values."""
    choice = Gimp.Choice.new()
    for i, (nick, label) in enumerate(nick_label_pairs):
        choice.add(nick, i, label, label)
    return choice


def resolve_style(config: Gimp.ProcedureConfig, suffix: str = "") -> tuple[dict, str]:
    """(protocol IMAGE, display title) of the style (slot ``suffix``: "" or "-2", "-3"), or a CALLING_ERROR."""
    found = optional_style(config, suffix)
    if found is None:
        raise PlugInError("no style given: choose a style layer or a style file", Gimp.PDBStatusType.CALLING_ERROR)
    return found


def optional_style(config: Gimp.ProcedureConfig, suffix: str) -> tuple[dict, str] | None:
    """(protocol IMAGE, display title) of one style slot, None when it names neither a layer nor a file."""
    if config.find_property(f"style-layer{suffix}") is None:
        return None
    layer = config.get_property(f"style-layer{suffix}")
    if layer is not None:
        return inline_image(layer), layer.get_name()
    style_file = config.get_property(f"style-file{suffix}")
    path = style_file.get_path() if style_file is not None else None
    if not path:
        if style_file is not None and style_file.get_uri():
            raise PlugInError(
                f"the style file must be a local file: {style_file.get_uri()}", Gimp.PDBStatusType.CALLING_ERROR
            )
        return None
    return {"path": os.path.abspath(path)}, style_title(path)


def job_options(config: Gimp.ProcedureConfig) -> dict:
    """The protocol "options" object from the procedure's arguments."""
    return {
        "strength": config.get_property("strength"),
        "size": config.get_property("size"),
        "quality": config.get_property("quality"),
        "preserve_color": config.get_property("preserve-colors"),
        "seed": config.get_property("seed"),
        "device": config.get_property("device"),
    }


def progress_text(event: dict, prefix: str) -> str | None:
    """Status-bar text for an event: the worker's stage message plus the loss when it has one."""
    message = event.get("message") or ""
    loss = event.get("loss")
    if event.get("event") == "progress" and isinstance(loss, (int, float)):
        message = f"{message} · loss {loss:.3g}" if message else f"loss {loss:.3g}"
    return prefix + message if message else None


def stylize_layers(image: Gimp.Image, layers: list[Gimp.Layer], config: Gimp.ProcedureConfig) -> list[Gimp.Layer]:
    """Run the worker for every layer, then add all result layers in one undo group."""
    python = find_runtime_python()
    slots = {1: resolve_style(config)}  # style slot -> (protocol IMAGE, title); slots 2 and 3 are optional
    slots.update({n: optional_style(config, f"-{n}") for n in nst_regions.CHANNEL_STYLES})
    slots = {n: style for n, style in slots.items() if style is not None}
    styles = list(slots.values())
    options = job_options(config)
    name = " + ".join(title for _, title in styles) + " — style"
    outside = config.get_property("outside-selection")
    try:
        regions = [nst_regions.region_request(image, src, config, list(slots)) for src in layers]
    except nst_regions.RegionError as exc:
        raise PlugInError(str(exc), Gimp.PDBStatusType.CALLING_ERROR) from exc
    results = []
    Gimp.progress_init("Neural style transfer: starting")
    for index, src in enumerate(layers):
        prefix = f"{src.get_name()}: " if len(layers) > 1 else ""

        def on_event(event: dict, index: int = index, prefix: str = prefix) -> None:
            text = progress_text(event, prefix)
            if text:
                Gimp.progress_set_text(text)
            fraction = event.get("fraction")
            if isinstance(fraction, (int, float)):
                Gimp.progress_update((index + min(max(fraction, 0.0), 1.0)) / len(layers))

        request = {"content": inline_image(src), "styles": [s for s, _ in styles], "options": options, **regions[index]}
        done = run_worker(python, request, on_event)
        results.append((src, decode_result(done, src)))
    Gimp.progress_set_text("Neural style transfer: adding the result")
    channeled = bool(nst_regions.channeled_slots(config, list(slots)))
    mask = config.get_property("use-selection") and nst_regions.masks_result_layer(outside, channeled)
    mask = mask and not Gimp.Selection.is_empty(image)
    added = []
    image.undo_group_start()
    try:
        for src, pixels in results:
            added.append(add_result_layer(image, src, name, pixels, mask))
    except Exception:
        for layer in added:
            image.remove_layer(layer)
        raise
    finally:
        image.undo_group_end()
    Gimp.progress_end()
    Gimp.displays_flush()
    return added


# ---------------------------------------------------------------- the procedure


def _error(procedure: Gimp.Procedure, status: Gimp.PDBStatusType, message: str) -> Gimp.ValueArray:
    """Return values that carry a message: GIMP shows it, and PDB callers get it as index 1."""
    return procedure.new_return_values(status, GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0))


def show_dialog(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig) -> bool:
    """The interactive dialog: one widget per argument, the style layer from any open image."""
    GimpUi.init(PROC_NAME)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Neural Style Transfer")
    dialog.get_spin_scale("strength", 1.0)  # a slider reads better than a bare number here
    dialog.fill(None)
    accepted = dialog.run()
    dialog.destroy()
    return accepted


def run_reporting(procedure: Gimp.Procedure, work: Callable[[], None]) -> Gimp.ValueArray:
    """Run a procedure's work; every failure becomes a PDB status with a message (shared by both procedures)."""
    try:
        work()
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
    except Cancelled:
        Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except PlugInError as exc:
        log(f"error: {exc}")
        Gimp.progress_end()
        return _error(procedure, exc.status, str(exc))
    except Exception as exc:  # GIMP shows nothing for an uncaught exception: report it
        traceback.print_exc()
        Gimp.progress_end()
        return _error(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, f"{type(exc).__name__}: {exc}")


def run(
    procedure: Gimp.Procedure,
    run_mode: Gimp.RunMode,
    image: Gimp.Image,
    drawables: list[Gimp.Drawable],
    config: Gimp.ProcedureConfig,
    run_data: object,
) -> Gimp.ValueArray:
    """Validate, ask (interactive), stylize."""

    def work() -> None:
        layers = [d for d in drawables if isinstance(d, Gimp.Layer)]
        if not layers or len(layers) != len(drawables):
            raise PlugInError("select one or more layers (not masks or channels)", Gimp.PDBStatusType.CALLING_ERROR)
        if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(procedure, config):
            raise Cancelled("dialog closed")
        added = stylize_layers(image, layers, config)
        log("added " + ", ".join(repr(layer.get_name()) for layer in added))

    return run_reporting(procedure, work)


def add_style_arguments(procedure: Gimp.Procedure) -> None:
    """The style and option arguments both procedures take, in the PDB's order."""
    rw = GObject.ParamFlags.READWRITE
    procedure.add_layer_argument(
        "style-layer", "Style la_yer", "A layer (of any open image) to take the style from", True, rw
    )
    procedure.add_file_argument(
        "style-file",
        "Style _file",
        "An image file to take the style from (used when no style layer is given)",
        Gimp.FileChooserAction.OPEN,
        True,
        None,
        rw,
    )
    procedure.add_double_argument("strength", "S_trength", "How strongly the style shows (0-1)", 0.0, 1.0, 0.5, rw)
    procedure.add_int_argument(
        "size", "Si_ze", "Longest side of the computation in pixels (0 = the layer's own size)", 0, 8192, 512, rw
    )
    procedure.add_choice_argument(
        "quality", "_Quality", "More iterations and scales are slower", _choice(QUALITIES), "normal", rw
    )
    procedure.add_choice_argument(
        "preserve-colors", "_Preserve colors", "Keep the content's colors", _choice(PRESERVE_COLORS), "none", rw
    )
    procedure.add_int_argument("seed", "S_eed", "Random seed", 0, 2**31 - 1, 0, rw)
    procedure.add_choice_argument("device", "_Device", "Where the computation runs", _choice(DEVICES), "auto", rw)


class NstStyleTransfer(Gimp.PlugIn):
    """Declares the procedure and its arguments; the work happens in run()."""

    def do_query_procedures(self) -> list[str]:
        return [PROC_NAME, nst_frames.FRAMES_PROC]

    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        if name == nst_frames.FRAMES_PROC:  # Filters > Animation, in its own module
            return nst_frames.create_procedure(self, name, sys.modules[__name__])
        rw = GObject.ParamFlags.READWRITE
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES)
        procedure.set_menu_label("Neural Style Transfer…")
        procedure.add_menu_path("<Image>/Filters/Artistic")
        procedure.set_documentation(
            "Paint the selected layers in the style of a painting",
            "Gatys-style neural style transfer computed by the nst runtime in your own Python "
            "(install it with `nst install-gimp-plugin`). Each selected layer gets a new layer "
            "above it, named after the style; with a selection, the result shows only inside it. "
            "'Outside the selection' makes the selection a region: the photo or a second style outside it, "
            "and saved selections (channels) place styles 2 and 3.",
            name,
        )
        procedure.set_attribution("nst contributors", "nst contributors", "2025")
        add_style_arguments(procedure)
        procedure.add_boolean_argument(
            "use-selection",
            "Limit to the selectio_n",
            "Show the result only inside the selection (as a layer mask)",
            True,
            rw,
        )
        nst_regions.add_region_arguments(procedure)  # optional, after today's: old scripts run unchanged
        return procedure


if __name__ == "__main__":
    Gimp.main(NstStyleTransfer.__gtype__, sys.argv)
