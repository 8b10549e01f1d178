"""The plug-in's exceptions; plain Python so that the launcher and the worker client stay GIMP-free."""

from __future__ import annotations


class PlugInError(Exception):
    """A failure to show the user as is; ``status`` names the Gimp.PDBStatusType it maps to."""

    def __init__(self, message: str, status: str = "EXECUTION_ERROR") -> None:
        super().__init__(message)
        self.status = status


class Cancelled(Exception):
    """The worker stopped (Stop, GIMP's cancel, SIGTERM) before it finished."""
