"""The stylize procedure: Filters > Artistic > Neural Style Transfer…

Interactive runs open the live dialog (nst_plugin.dialog); every other run mode (scripts, batch,
Repeat) runs to the end with GIMP's progress and adds the final result, as it always did.
"""

from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

from .arguments import add_run_arguments  # noqa: E402
from .batch import stylize_layers  # noqa: E402
from .errors import PlugInError  # noqa: E402
from .pdb import run_reporting  # noqa: E402
from .worker_client import log  # noqa: E402

PROC_NAME = "python-fu-nst-style-transfer"


def selected_layers(drawables: list[Gimp.Drawable]) -> list[Gimp.Layer]:
    """The selected layers, or a CALLING_ERROR when something else is selected."""
    layers = [d for d in drawables if isinstance(d, Gimp.Layer)]
    if not layers or len(layers) != len(drawables):
        raise PlugInError("select one or more layers (not masks or channels)", "CALLING_ERROR")
    return layers


def run(
    procedure: Gimp.Procedure,
    run_mode: Gimp.RunMode,
    image: Gimp.Image,
    drawables: list[Gimp.Drawable],
    config: Gimp.ProcedureConfig,
    run_data: object,
) -> Gimp.ValueArray:
    """Validate, then the dialog (interactive) or a run to the end; every failure becomes a PDB status."""

    def work() -> Gimp.PDBStatusType:
        layers = selected_layers(drawables)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            from .dialog import run_dialog  # GTK only where a dialog is shown

            return run_dialog(procedure, config, image, layers)
        added = stylize_layers(image, layers, config)
        log("added " + ", ".join(repr(layer.get_name()) for layer in added))
        return Gimp.PDBStatusType.SUCCESS

    return run_reporting(procedure, work)


def create(plugin: Gimp.PlugIn, name: str) -> Gimp.Procedure:
    """The procedure and its arguments (today's first, then the optional extra styles)."""
    procedure = Gimp.ImageProcedure.new(plugin, name, Gimp.PDBProcType.PLUGIN, run, None)
    procedure.set_image_types("RGB*")
    procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES)
    procedure.set_menu_label("Neural Style Transfer…")
    procedure.add_menu_path("<Image>/Filters/Artistic")
    procedure.set_documentation(
        "Paint the selected layers in the style of a painting",
        "Gatys-style neural style transfer computed by the nst runtime in your own Python "
        "(install it with `nst install-gimp-plugin`). Each selected layer gets a new layer "
        "above it, named after the style; with a selection, the result shows only inside it. "
        "Up to three styles blend with their weights. The dialog shows the painting as it "
        "forms and can apply it at any moment.",
        name,
    )
    procedure.set_attribution("nst contributors", "nst contributors", "2025")
    add_run_arguments(procedure)
    return procedure
