"""nst's runtime: Gatys-style neural style transfer whose VGG forward and backward run in onnxruntime.

- ``stylize(content, styles, ...)`` → a PIL image (the one engine behind the CLI, the worker and GIMP).
- ``vgg_features(image, layers=None)`` → differentiable VGG activations for your own losses.
"""

from .engine import StylizeResult, run, stylize
from .errors import Cancelled, NSTError
from .events import Note, Progress, Status
from .features import VGG, vgg_features

__all__ = [
    "VGG",
    "Cancelled",
    "NSTError",
    "Note",
    "Progress",
    "Status",
    "StylizeResult",
    "run",
    "stylize",
    "vgg_features",
]
