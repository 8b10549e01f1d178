"""``python -m nst_runtime``: the same as ``nst``."""

from .cli import entry

entry()
