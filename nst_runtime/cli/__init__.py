"""``nst``: style transfer from the command line, a thin shell on the engine's events.

``nst CONTENT STYLE [STYLE ...] -o OUT``; also ``nst demo`` (the bundled example), ``nst batch``
(many photos), ``nst video`` (a video without flicker), ``nst estimate`` (the time a run would
take) and ``nst install-gimp-plugin``. Every failure is one line on stderr and a non-zero exit
code; Ctrl-C stops within a second and writes nothing.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

#: ``nst NAME …`` runs ``nst_runtime.cli.<module>.main``; anything else is a photo to paint.
SUBCOMMANDS = {
    "install-gimp-plugin": "gimp_install",
    "estimate": "estimate",
    "batch": "batch",
    "video": "video",
    "demo": "demo",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return import_module(f".{SUBCOMMANDS[argv[0]]}", __name__).main(argv[1:])
    from .stylize import main as stylize_main

    return stylize_main(argv)


def entry() -> None:
    """Console-script entry: skip the interpreter's teardown, which takes torch seconds to finish."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
