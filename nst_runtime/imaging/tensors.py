"""Images as torch tensors and back, and the one resampling every scale uses."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bicubic with antialiasing, so downscaling does not alias and upscaling stays smooth."""
    if image.shape[2:] == (height, width):
        return image
    return F.interpolate(image, size=(height, width), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """Float RGB [H, W, 3] → [1, 3, H, W] float32 on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(device, torch.float32)


def to_array(image: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] → float RGB [H, W, 3] in [0, 1] on the CPU."""
    return image.detach()[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy().astype(np.float32)


def resize_array(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """An RGB array resized like the engine resizes tensors."""
    if rgb.shape[:2] == (height, width):
        return rgb
    return to_array(resize(to_tensor(rgb, torch.device("cpu")), height, width))
