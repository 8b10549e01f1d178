"""PDB return values for the plug-in's procedures: every failure becomes a status with a message."""

from __future__ import annotations

import traceback
from collections.abc import Callable

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib  # noqa: E402

from .errors import Cancelled, PlugInError  # noqa: E402
from .worker_client import log  # noqa: E402


def error_values(procedure: Gimp.Procedure, status: str, message: str) -> Gimp.ValueArray:
    """Return values that carry a message: GIMP shows it, and PDB callers get it as index 1."""
    error = GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0)
    return procedure.new_return_values(getattr(Gimp.PDBStatusType, status), error)


def run_reporting(procedure: Gimp.Procedure, work: Callable[[], Gimp.PDBStatusType | None]) -> Gimp.ValueArray:
    """Run a procedure's work (its status, SUCCESS when it returns None); failures become statuses."""
    try:
        status = work()
        return procedure.new_return_values(status or Gimp.PDBStatusType.SUCCESS, GLib.Error())
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
