"""Masks a user paints with: any greyscale image or array as per-pixel weights in [0, 1], resized
to an image and averaged onto VGG's pooling grids (the regions' and style masks' raw material)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import NSTError
from .images import ImageData, load_image

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec. 601, as colour.py's YIQ


@dataclass
class Mask:
    """A region: float32 [H, W] weights in [0, 1], a name for messages, notes for the user."""

    values: np.ndarray
    name: str = "mask"
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not bool(self.values.any())

    @property
    def full(self) -> bool:
        return bool((self.values >= 1.0).all())


def load_mask(source: object, role: str = "mask") -> Mask:
    """A path, PIL image or array → a Mask. Greyscale 0–1 or 0–255 (uint8, uint16, float or bool);
    a colour image counts by its luminance, and transparency as 0."""
    if isinstance(source, Mask):
        return source
    name = str(source) if isinstance(source, str | os.PathLike) else role
    if isinstance(source, np.ndarray):
        return Mask(_array_values(source, role), name)
    if isinstance(source, str | os.PathLike | Image.Image | ImageData):
        image = load_image(source, role)
        values = image.rgb @ _LUMA
        if image.alpha is not None:
            values = values * (image.alpha.astype(np.float32) / 255.0)
        return Mask(np.clip(values, 0.0, 1.0).astype(np.float32), name, list(image.notes))
    raise NSTError(f"{role} must be a file path, a PIL image or a numpy array, not {type(source).__name__}")


def _array_values(arr: np.ndarray, role: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        channels = arr.shape[2]
        grey, alpha = (arr[..., :3], arr[..., 3]) if channels == 4 else (arr, None)
        if channels == 2:
            grey, alpha = arr[..., :1], arr[..., 1]
        values = _scaled(grey, role)
        values = values @ _LUMA if values.shape[2] == 3 else values[..., 0]
        if alpha is not None:
            values = values * _scaled(alpha, role)
    elif arr.ndim == 2:
        values = _scaled(arr, role)
    else:
        raise NSTError(f"{role} array must be H×W (greyscale) or H×W×1/2/3/4, got shape {arr.shape}")
    if values.shape[0] < 1 or values.shape[1] < 1:
        raise NSTError(f"{role} array has no pixels: shape {arr.shape}")
    return np.ascontiguousarray(np.clip(values, 0.0, 1.0), dtype=np.float32)


def _scaled(arr: np.ndarray, role: str) -> np.ndarray:
    """0–1 floats as they are, 0–255 (uint8 or floats above 1) and 0–65535 (uint16) to 0–1."""
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise NSTError(f"{role} array must hold numbers (0–1 or 0–255), not {arr.dtype}")
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        raise NSTError(f"{role} array contains NaN or infinity")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0 or high > 255:
        raise NSTError(f"{role} values must lie in 0–1 or 0–255, got {low:g}…{high:g}")
    return (values / 255.0 if high > 1.0 else values).astype(np.float32)


def fit(mask: Mask, height: int, width: int, what: str) -> Mask:
    """The mask in ``height`` × ``width``; one of another size is resized, with a note."""
    h, w = mask.values.shape
    if (h, w) == (height, width):
        return mask
    note = f"{mask.name} is {w}×{h} but {what} is {width}×{height}: resized to fit"
    values = resample(torch.from_numpy(mask.values), height, width).numpy()
    return Mask(values, mask.name, [*mask.notes, note])


def resample(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[H, W] → [height, width]: antialiased bilinear (no aliasing when shrinking, no overshoot)."""
    if tuple(mask.shape) == (height, width):
        return mask
    out = F.interpolate(mask[None, None], size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return out[0, 0].clamp(0.0, 1.0)


def on_layers(mask: torch.Tensor, shapes: dict[str, tuple[int, int]]) -> dict[str, torch.Tensor]:
    """A mask at the image's size → each layer's grid, by 2 × 2 averages as VGG pools (floor)."""
    out: dict[str, torch.Tensor] = {}
    levels = [mask[None, None]]
    for layer, shape in sorted(shapes.items(), key=lambda item: -item[1][0] * item[1][1]):
        while tuple(levels[-1].shape[2:]) != tuple(shape):
            current = levels[-1]
            if current.shape[2] < 2 or current.shape[3] < 2 or current.shape[2] < shape[0]:
                raise NSTError(f"cannot bring a {tuple(mask.shape)} mask to {layer}'s grid {tuple(shape)}")
            levels.append(F.avg_pool2d(current, 2))
        out[layer] = levels[-1][0, 0]
    return out
