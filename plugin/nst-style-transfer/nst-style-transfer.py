#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Artistic > Neural Style Transfer…

GIMP's own Python has neither numpy nor torch, so this plug-in holds no ML code. It reads the
selected layers' pixels, runs ``python -m nst_runtime.worker`` in the user's own Python (the one
that `nst install-gimp-plugin` recorded) and talks to it with the JSON-lines protocol of
docs/worker-protocol.md. The modules live in ``nst_plugin/`` next to this file (GIMP puts this
folder on sys.path); this file only declares the procedures.
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402
from nst_plugin import frames, stylize  # noqa: E402

# procedure name -> its factory(plugin, name); each procedure lives in its own nst_plugin module
PROCEDURES = {
    stylize.PROC_NAME: stylize.create,  # Filters > Artistic > Neural Style Transfer…
    frames.PROC_NAME: frames.create,  # Filters > Animation > Neural Style Transfer (frames)…
}


class NstStyleTransfer(Gimp.PlugIn):
    """Declares the procedures; their modules do the work."""

    def do_query_procedures(self) -> list[str]:
        return list(PROCEDURES)

    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        return PROCEDURES[name](self, name)


if __name__ == "__main__":
    Gimp.main(NstStyleTransfer.__gtype__, sys.argv)
