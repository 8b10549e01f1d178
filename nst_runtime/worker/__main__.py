"""``python -m nst_runtime.worker``: the entry point installed GIMP plug-ins start."""

from .protocol import exit_with
from .stylize import main

exit_with(main)
