"""``python -m nst_runtime.cli``: the same as ``nst``."""

from . import entry

entry()
