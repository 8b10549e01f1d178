"""Pixels in and out of GIMP layers (sRGB-encoded 8-bit RGBA, what the worker protocol carries).

Every function here calls Gimp/GEGL and must run on GIMP's main thread.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

from .errors import PlugInError  # noqa: E402

PIXEL_FORMAT = "R'G'B'A u8"
MASK_FORMAT = "Y u8"


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


def scaled_rgba(drawable: Gimp.Drawable, width: int, height: int) -> bytes:
    """The drawable scaled to width × height by GEGL (for the preview's "before" and masking)."""
    scale = width / drawable.get_width()
    rect = Gegl.Rectangle.new(0, 0, width, height)
    return bytes(drawable.get_buffer().get(rect, scale, PIXEL_FORMAT, Gegl.AbyssPolicy.CLAMP))


def selection_mask(image: Gimp.Image, layer: Gimp.Layer, width: int, height: int) -> bytes | None:
    """The selection over the layer's area, scaled to width × height (one byte a pixel), or None."""
    if Gimp.Selection.is_empty(image):
        return None
    scale = width / layer.get_width()
    _, ox, oy = layer.get_offsets()
    rect = Gegl.Rectangle.new(round(ox * scale), round(oy * scale), width, height)
    selection = image.get_selection().get_buffer()
    return bytes(selection.get(rect, scale, MASK_FORMAT, Gegl.AbyssPolicy.NONE))


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


def add_result_layers(
    image: Gimp.Image, results: Sequence[tuple[Gimp.Layer, bytes]], name: str, use_selection: bool
) -> list[Gimp.Layer]:
    """All results in one undo group (one Ctrl+Z removes them); on a failure none stays."""
    mask = use_selection and not Gimp.Selection.is_empty(image)
    added: list[Gimp.Layer] = []
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
    Gimp.displays_flush()
    return added
