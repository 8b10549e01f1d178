"""The stylize procedure: Filters > Artistic > Neural Style Transfer…

Interactive runs open the live dialog (nst_plugin.dialog); every other run mode (scripts, batch,
Repeat) runs to the end with GIMP's progress and adds the final result, as it always did.
"""

from __future__ import annotations

import traceback

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib  # noqa: E402

from .arguments import add_run_arguments  # noqa: E402
from .batch import stylize_layers  # noqa: E402
from .errors import Cancelled, PlugInError  # noqa: E402
from .worker_client import log  # noqa: E402

PROC_NAME = "python-fu-nst-style-transfer"


def error_values(procedure: Gimp.Procedure, status: str, message: str) -> Gimp.ValueArray:
    """Return values that carry a message: GIMP shows it, and PDB callers get it as index 1."""
    error = GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0)
    return procedure.new_return_values(getattr(Gimp.PDBStatusType, status), error)


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
    try:
        layers = selected_layers(drawables)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            from .dialog import run_dialog  # GTK only where a dialog is shown

            status = run_dialog(procedure, config, image, layers)
            return procedure.new_return_values(status, GLib.Error())
        added = stylize_layers(image, layers, config)
        log("added " + ", ".join(repr(layer.get_name()) for layer in added))
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
    except Cancelled:
        Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except PlugInError as exc:
        log(f"error: {exc}")
        Gimp.progress_end()
        return error_values(procedure, exc.status, str(exc))
    except Exception as exc:  # GIMP shows nothing for an uncaught exception: report it
        traceback.print_exc()
        Gimp.progress_end()
        return error_values(procedure, "EXECUTION_ERROR", f"{type(exc).__name__}: {exc}")


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
