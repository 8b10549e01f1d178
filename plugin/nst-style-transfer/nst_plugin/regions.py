"""Regions in GIMP: the selection and saved selections (channels) say where each style paints.

The worker paints each style only inside its own mask, with guided Gram matrices (docs/regions.md,
the request's "masks" in docs/worker-protocol.md). This module turns the "Outside the selection"
choice, the selection and the channels chosen for styles 2 and 3 into that list of masks, read
over each layer's own area, and declares the PDB arguments for them. Every argument is optional
and appended after today's ones; the defaults ("Same style", no channels) give today's run.

Which mask each style gets (:func:`plan`):

- "Same style": no regions, as today (a style with a channel paints only inside it);
- "Keep the photo": style 1 inside the selection, the photo outside;
- "Second style": style 1 inside the selection, style 2 outside it.

Styles 2 and 3 follow their channel when they have one. The planning is pure Python (tested
outside GIMP); the functions that read masks call GEGL and run on GIMP's main thread.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .errors import PlugInError

OUTSIDE = (("same", "Same style"), ("keep", "Keep the photo"), ("second", "Second style"))
CHANNEL_STYLES = (2, 3)  # style-N-channel arguments
MASK_FORMAT = "Y u8"  # a selection's or channel's linear value, one byte a pixel
INSIDE, OUTSIDE_SEL, CHANNEL = "inside", "outside", "channel"
_INVERT = bytes(255 - v for v in range(256))


class RegionError(ValueError):
    """A combination of arguments that cannot make regions (a calling error for the PDB)."""


def plan(
    outside: str, has_selection: bool, slots: Sequence[int], channeled: Collection[int]
) -> list[str | None] | None:
    """Per style of the request, what its mask is made of: "inside" (the selection), "outside" (its
    complement), "channel" (that style's channel) or None (everywhere); None for the whole run: no regions.

    ``slots``: the style slot (1, 2 or 3) of each style the request sends, in its order (a slot left
    empty sends nothing); ``channeled``: the slots that have a channel. An empty selection is the
    whole image, as everywhere in GIMP, so "Keep the photo" then styles everything.
    """
    if outside not in {nick for nick, _ in OUTSIDE}:
        raise RegionError(f"unknown choice for 'outside-selection': {outside!r}")
    if outside == "second" and 2 not in slots:
        raise RegionError("“Second style” outside the selection needs a style 2 layer or file")
    first = None if outside == "same" or not has_selection else INSIDE
    masks: list[str | None] = []
    for slot in slots:
        if slot != 1 and slot in channeled:
            masks.append(CHANNEL)
        elif slot == 2 and outside == "second":
            if not has_selection:
                raise RegionError("“Second style” paints outside the selection: select a part of the image first")
            masks.append(OUTSIDE_SEL)
        else:
            masks.append(first)  # style 1, or a style blended with it wherever style 1 paints
    return None if all(m is None for m in masks) else masks


def masks_result_layer(outside: str, channeled: bool) -> bool:
    """Whether the finished layer may still be masked by the selection (``use-selection``): not when
    something paints outside it (style 2 "outside", or a channel); the worker keeps the photo
    wherever no region reaches, so the layer needs no mask then."""
    return outside == "same" or (outside == "keep" and not channeled)


def channeled_slots(config, slots: Sequence[int]) -> set[int]:
    """The slots among ``slots`` whose style has a channel."""
    return {n for n in CHANNEL_STYLES if n in slots and config.get_property(f"style-{n}-channel") is not None}


def cut_out(config, slots: Sequence[int]) -> bool:
    """Whether the result layers get the selection as their layer mask (``use-selection``, when
    nothing paints outside the selection)."""
    channeled = bool(channeled_slots(config, slots))
    return bool(config.get_property("use-selection")) and masks_result_layer(
        config.get_property("outside-selection"), channeled
    )


def grey_to_image(grey: bytes, width: int, height: int, invert: bool = False) -> dict:
    """A protocol IMAGE for a mask: its grey value in R, G and B, A = 255 (inverted for "outside")."""
    import base64

    if invert:
        grey = grey.translate(_INVERT)
    rgba = bytearray(b"\xff") * (width * height * 4)
    for offset in range(3):
        rgba[offset::4] = grey
    return {"rgba": base64.b64encode(bytes(rgba)).decode("ascii"), "width": width, "height": height}


# ---------------------------------------------------------------- inside GIMP


def add_region_arguments(procedure, declare_styles: bool = False) -> None:
    """The "Outside the selection" choice and the channels for styles 2 and 3 (after today's arguments).

    ``declare_styles``: also declare the style 2 and 3 slots (style-layer-N, style-file-N), for a
    procedure that does not have them (the stylize procedure's nst_plugin.arguments does).
    """
    import gi

    gi.require_version("Gimp", "3.0")
    from gi.repository import Gimp, GObject

    rw = GObject.ParamFlags.READWRITE
    choice = Gimp.Choice.new()
    for i, (nick, label) in enumerate(OUTSIDE):
        choice.add(nick, i, label, label)
    procedure.add_choice_argument(
        "outside-selection",
        "Outside the selection",  # no mnemonic: every letter of it is taken in the dialogs
        "What happens outside the selection: the same style (no regions), the photo, or style 2",
        choice,
        "same",
        rw,
    )
    for n in CHANNEL_STYLES:
        if declare_styles:
            procedure.add_layer_argument(
                f"style-layer-{n}", f"Style _{n} layer", f"A layer (of any open image): style {n}", True, rw
            )
            procedure.add_file_argument(
                f"style-file-{n}",
                "Style 2 _image file" if n == 2 else "Style 3 i_mage file",
                f"An image file, used when no style {n} layer is given",
                Gimp.FileChooserAction.OPEN,
                True,
                None,
                rw,
            )
        procedure.add_channel_argument(
            f"style-{n}-channel",
            "Style 2 mas_k (channel)" if n == 2 else "Style 3 mask (channel)",
            f"A saved selection: style {n} paints only there (default: style 2 outside the selection)",
            True,
            rw,
        )


def read_mask(drawable, layer) -> bytes:
    """A selection's or channel's values over the layer's area (0 where the layer leaves the image)."""
    import gi

    gi.require_version("Gegl", "0.4")
    from gi.repository import Gegl

    _, ox, oy = layer.get_offsets()
    rect = Gegl.Rectangle.new(ox, oy, layer.get_width(), layer.get_height())
    return bytes(drawable.get_buffer().get(rect, 1.0, MASK_FORMAT, Gegl.AbyssPolicy.NONE))


def region_request(image, layer, config, slots: Sequence[int]) -> dict:
    """The request's "masks" for one layer ({} when the run has no regions); ``slots`` as for
    :func:`plan`. A RegionError when the arguments cannot make regions."""
    from gi.repository import Gimp

    has_selection = not Gimp.Selection.is_empty(image)
    kinds = plan(config.get_property("outside-selection"), has_selection, slots, channeled_slots(config, slots))
    if kinds is None:
        return {}
    w, h = layer.get_width(), layer.get_height()
    selection = read_mask(image.get_selection(), layer) if has_selection else None
    masks: list[dict | None] = []
    for slot, kind in zip(slots, kinds, strict=True):
        if kind is None:
            masks.append(None)
        elif kind == CHANNEL:
            masks.append(grey_to_image(read_mask(config.get_property(f"style-{slot}-channel"), layer), w, h))
        else:
            masks.append(grey_to_image(selection, w, h, invert=kind == OUTSIDE_SEL))
    return {"masks": masks}


def layer_masks(image, layers, config, slots: Sequence[int]) -> list[dict]:
    """:func:`region_request` for each layer, a RegionError as the PDB's CALLING_ERROR."""
    try:
        return [region_request(image, layer, config, slots) for layer in layers]
    except RegionError as exc:
        raise PlugInError(str(exc), "CALLING_ERROR") from exc
