"""Filters > Animation > Neural Style Transfer (frames)…: the image's layers stylized as one animation.

GIMP keeps an animation as layers, one frame each, played bottom layer first. Stylizing each on
its own flickers; this procedure sends all frames to ``python -m nst_runtime.frame_worker``,
which warps each stylized frame into the next by optical flow (Ruder et al. 2016), and adds
the stylized copies as a layer group above everything, in one undo group, in the same order.
A frame's timing and combining mode live in its name ("Frame 2 (100ms) (replace)"); the copy's
name keeps them, so exporting the group's frames as GIF/WebP plays them the same way.

It holds no ML code and no worker plumbing of its own: the runtime lookup and the worker start
(nst_plugin.launch, nst_plugin.worker_client), the style and option arguments
(nst_plugin.arguments) and the PDB statuses (nst_plugin.pdb) are the stylize procedure's.
"""

from __future__ import annotations

import base64
import re

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GObject  # noqa: E402

from . import launch as launching  # noqa: E402
from .arguments import add_style_arguments, job_options, resolve_styles, styles_request  # noqa: E402
from .errors import Cancelled, PlugInError  # noqa: E402
from .layers import PIXEL_FORMAT  # noqa: E402
from .pdb import run_reporting  # noqa: E402
from .progress import progress_text  # noqa: E402
from .worker_client import log, run_to_end  # noqa: E402

PROC_NAME = "python-fu-nst-style-transfer-frames"
FRAME_WORKER = "nst_runtime.frame_worker"
# What GIMP's GIF/WebP export reads from a layer name: a frame's duration and combining mode.
FRAME_TAG = re.compile(r"\s*\((?:\d+\s*ms|replace|combine)\)", re.IGNORECASE)


def frame_layers(image: Gimp.Image) -> list[Gimp.Layer]:
    """The top-level layers in animation order: bottom layer first."""
    return list(reversed(image.get_layers()))


def frame_name(name: str, title: str) -> str:
    """'Frame 2 (100ms) (replace)' → 'Frame 2 — Starry Night (100ms) (replace)': the tags stay last."""
    tags = "".join(f" {t.strip()}" for t in FRAME_TAG.findall(name))
    base = FRAME_TAG.sub("", name).strip() or "Frame"
    return f"{base} — {title}{tags}"


def read_frame(layer: Gimp.Layer, image: Gimp.Image) -> dict:
    """The layer as the frame shows it: image-sized, at its offsets, transparent where it does not reach."""
    _, ox, oy = layer.get_offsets()
    width, height = image.get_width(), image.get_height()
    rect = Gegl.Rectangle.new(-ox, -oy, width, height)  # the image's area in the layer's own coordinates
    rgba = bytes(layer.get_buffer().get(rect, 1.0, PIXEL_FORMAT, Gegl.AbyssPolicy.NONE))
    return {"rgba": base64.b64encode(rgba).decode("ascii"), "width": width, "height": height}


def stylize_frames(image: Gimp.Image, config: Gimp.ProcedureConfig) -> Gimp.GroupLayer:
    """Run the frame worker over every frame, then add the group of results in one undo group."""
    layers = frame_layers(image)
    if not layers:
        raise PlugInError("the image has no layers to use as frames", "CALLING_ERROR")
    launch = launching.launch_for_gimp(Gimp.directory(), module=FRAME_WORKER)
    styles = resolve_styles(config)
    title = " + ".join(s.title for s in styles)
    request = {
        "frames": [read_frame(layer, image) for layer in layers],
        **styles_request(styles),
        "options": job_options(config),
        "temporal_weight": config.get_property("temporal-weight"),
        "frame_steps": config.get_property("frame-steps"),
    }
    width, height = image.get_width(), image.get_height()
    finished: dict[int, bytes] = {}
    Gimp.progress_init("Neural style transfer (frames): starting")

    def on_event(event: dict) -> None:
        if event.get("event") == "frame":
            pixels = base64.b64decode(event.get("rgba", ""))
            if (event.get("width"), event.get("height")) != (width, height) or len(pixels) != width * height * 4:
                raise PlugInError(f"the worker returned a bad frame {event.get('index')}")
            finished[int(event["index"])] = pixels
            return
        text = progress_text(event, "")
        if text:
            Gimp.progress_set_text(text)
        fraction = event.get("fraction")
        if isinstance(fraction, int | float):
            Gimp.progress_update(min(max(fraction, 0.0), 1.0))

    run_to_end(launch, request, on_event, stdin_open=False)  # the frame worker reads its request to the end
    if sorted(finished) != list(range(len(layers))):
        raise PlugInError(f"the worker returned {len(finished)} of {len(layers)} frames")
    Gimp.progress_set_text("Neural style transfer (frames): adding the frames")
    image.undo_group_start()
    try:
        group = Gimp.GroupLayer.new(image, f"{title} — style (frames)")
        image.insert_layer(group, None, 0)
        for index, src in enumerate(layers):  # each on top of the last: the group plays bottom first too
            layer = Gimp.Layer.new(
                image, frame_name(src.get_name(), title), width, height, Gimp.ImageType.RGBA_IMAGE, 100.0,
                Gimp.LayerMode.NORMAL,
            )  # fmt: skip
            image.insert_layer(layer, group, 0)
            buffer = layer.get_buffer()
            buffer.set(Gegl.Rectangle.new(0, 0, width, height), PIXEL_FORMAT, finished[index])
            buffer.flush()
            layer.update(0, 0, width, height)
    except Exception:
        if "group" in locals() and group.is_valid():
            image.remove_layer(group)
        raise
    finally:
        image.undo_group_end()
    Gimp.progress_end()
    Gimp.displays_flush()
    return group


def run(procedure, run_mode, image, drawables, config, run_data) -> Gimp.ValueArray:
    def work() -> None:
        if run_mode == Gimp.RunMode.INTERACTIVE:
            from .dialog import ask

            if not ask(procedure, config, "Neural Style Transfer (frames)"):
                raise Cancelled("dialog closed")
        group = stylize_frames(image, config)
        log(f"added {group.get_name()!r} with {len(group.get_children())} frames")

    return run_reporting(procedure, work)


def create(plugin: Gimp.PlugIn, name: str) -> Gimp.Procedure:
    """The procedure, with the stylize procedure's style and option arguments plus the temporal ones."""
    rw = GObject.ParamFlags.READWRITE
    procedure = Gimp.ImageProcedure.new(plugin, name, Gimp.PDBProcType.PLUGIN, run, None)
    procedure.set_image_types("RGB*")
    procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
    procedure.set_menu_label("Neural Style Transfer (frames)…")
    procedure.add_menu_path("<Image>/Filters/Animation")
    procedure.set_documentation(
        "Paint every frame (layer) of an animation in the style of a painting, without flicker",
        "Treats the image's layers as frames, bottom layer first, as GIMP's animation export does. Each frame "
        "starts from the previous stylized frame warped by optical flow and is kept close to it where the "
        "motion is reliable (Ruder et al. 2016). The stylized frames are added as a layer group on top; "
        "their names keep the frames' timing and combining mode, e.g. (100ms) (replace).",
        name,
    )
    procedure.set_attribution("nst contributors", "nst contributors", "2026")
    add_style_arguments(procedure)
    procedure.add_double_argument(
        "temporal-weight", "_Temporal weight", "How strongly each frame keeps to the previous one (0: only "
        "start from it)", 0.0, 100.0, 1.0, rw,
    )  # fmt: skip
    procedure.add_int_argument("frame-steps", "Frame ste_ps", "Steps of each frame after the first", 1, 1000, 20, rw)
    return procedure
