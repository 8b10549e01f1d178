"""The temporal term of video stylization (Ruder, Dosovitskiy and Brox, 2016): each frame is
pulled towards the previous stylized frame warped into it (``nst_runtime.imaging.motion``),
except where the flow cannot be trusted. L_t = (1/D) Σ c (x − ω)², a pixel-space term the
engine adds at every scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# Weight of the temporal term at --temporal-weight 1, relative to the engine's content/style
# balance: measured on the benchmark (docs/benchmarks.md, "Temporal consistency").
TEMPORAL_SCALE = 1e7


@dataclass(frozen=True)
class TemporalTerm:
    """L_t = weight · (1/D) Σ c (x − ω)², ω the warped previous stylized frame (a PixelTerm for the engine).

    ``target`` (ω, [H, W, 3]) and ``weights`` (c, [H, W]) are at any size; each scale gets them
    resampled to its own, so the term composes with coarse-to-fine and with any evaluator.
    """

    target: np.ndarray
    weights: np.ndarray
    weight: float = 1.0
    name: str = "temporal"

    def at(self, height: int, width: int, device) -> Callable:
        import torch

        target = torch.from_numpy(_resized(self.target, height, width).transpose(2, 0, 1).copy())[None]
        weights = torch.from_numpy(_resized(self.weights, height, width).copy())[None, None]
        target, weights = target.to(device, torch.float32), weights.to(device, torch.float32)
        scale = self.weight * TEMPORAL_SCALE / (3 * height * width)

        def loss(x: torch.Tensor) -> torch.Tensor:
            return scale * (weights * (x - target).square()).sum()

        return loss


def _resized(array: np.ndarray, height: int, width: int) -> np.ndarray:
    if array.shape[:2] == (height, width):
        return np.ascontiguousarray(array, dtype=np.float32)
    shrinking = height * width < array.shape[0] * array.shape[1]
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(array, dtype=np.float32), (width, height), interpolation=method)
