"""nst's runtime: Gatys-style neural style transfer whose VGG forward and backward run in onnxruntime.

- ``stylize(content, styles, ...)`` → a PIL image (the one engine behind the CLI, the worker and GIMP).
- ``vgg_features(image, layers=None)`` → differentiable VGG activations for your own losses.
- ``stylize_frames(frames, styles, options)`` → an animation stylized frame by frame without
  flicker; ``open_clip`` / ``write_clip`` read and write videos, animations and image folders.

The subpackages are layered (docs/architecture.md): front ends (``cli``, ``worker``) on ``jobs``,
jobs on the ``engine``, the engine on ``evaluation``, evaluation on ``objective`` and
``planning``, those on ``vgg`` and ``imaging``; each imports only the layers below it.

Names are imported on first use, so that light submodules (the worker's protocol, graph lookup)
start without paying for torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "stylize": "engine.runner",
    "run": "engine.runner",
    "StylizeResult": "engine.runner",
    "stylize_frames": "engine.animation",
    "vgg_features": "vgg.features",
    "VGG": "vgg.features",
    "Options": "options",
    "make_options": "options",
    "open_clip": "imaging.frameio",
    "write_clip": "imaging.frameio",
    "NSTError": "errors",
    "Cancelled": "errors",
    "Status": "events",
    "Note": "events",
    "Progress": "events",
    "Preview": "events",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
