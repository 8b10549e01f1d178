"""nst's runtime: Gatys-style neural style transfer whose VGG forward and backward run in onnxruntime.

- ``stylize(content, styles, ...)`` → a PIL image (the one engine behind the CLI, the worker and GIMP).
- ``vgg_features(image, layers=None)`` → differentiable VGG activations for your own losses.

Names are imported on first use, so that light submodules (the worker's protocol, graph lookup)
start without paying for torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "stylize": "engine", "run": "engine", "StylizeResult": "engine",
    "vgg_features": "features", "VGG": "features",
    "NSTError": "errors", "Cancelled": "errors",
    "Status": "events", "Note": "events", "Progress": "events",
}  # fmt: skip

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
