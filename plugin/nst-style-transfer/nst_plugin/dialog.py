"""The interactive dialog: one widget per argument, the style layer from any open image."""

from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
from gi.repository import Gimp, GimpUi  # noqa: E402

from .batch import stylize_layers  # noqa: E402
from .worker_client import log  # noqa: E402


def run_dialog(
    procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, image: Gimp.Image, layers: list[Gimp.Layer]
) -> Gimp.PDBStatusType:
    """Ask, then run to the end; CANCEL when the dialog is dismissed."""
    GimpUi.init(procedure.get_name())
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Neural Style Transfer")
    dialog.get_spin_scale("strength", 1.0)  # a slider reads better than a bare number here
    dialog.fill(None)
    accepted = dialog.run()
    dialog.destroy()
    if not accepted:
        return Gimp.PDBStatusType.CANCEL
    added = stylize_layers(image, layers, config)
    log("added " + ", ".join(repr(layer.get_name()) for layer in added))
    return Gimp.PDBStatusType.SUCCESS
