"""Motion between frames for temporal consistency (Ruder, Dosovitskiy and Brox, "Artistic style
transfer for videos", 2016): optical flow, warping, where the flow holds, shot cuts, and the
warping error that measures flicker.

- ``flow(a, b)``: OpenCV's DIS optical flow (preset MEDIUM), no model weights. The flow lives on
  ``a``'s grid and points into ``b``: ``a(p) ≈ b(p + flow(p))``.
- ``warp(image, flow)``: ``image`` (on ``b``'s grid) resampled onto ``a``'s grid (``cv2.remap``).
- ``consistency(flow, reverse)``: per-pixel weights c in [0, 1] from the forward–backward check of
  Ruder et al. §4.2 (after Sundaram et al. 2010): 0 at occlusions, motion boundaries and pixels
  whose flow leaves the image; then blurred with σ = 0.8 as in their consistency checker.
- ``warping_error``: the temporal warping error of Lai et al. 2018, the benchmark's measure.

Arrays are float32 RGB [H, W, 3] in [0, 1] (flows: float32 [H, W, 2] as (dx, dy) in pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# Ruder et al. §4.2 thresholds.
OCCLUSION_RELATIVE = 0.01
OCCLUSION_ABSOLUTE = 0.5
BOUNDARY_RELATIVE = 0.01
BOUNDARY_ABSOLUTE = 0.002
BLUR_SIGMA = 0.8

# A frame whose mean consistency with the previous one is below this starts a new shot.
SHOT_CUT_CONSISTENCY = 0.2


def _gray8(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


_dis: cv2.DISOpticalFlow | None = None


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DIS optical flow from ``a`` to ``b``, on ``a``'s grid: ``a(p) ≈ b(p + flow(p))``."""
    global _dis
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"frames differ in size: {a.shape[1]}×{a.shape[0]} and {b.shape[1]}×{b.shape[0]}")
    if _dis is None:
        _dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _dis.calc(_gray8(a), _gray8(b), None)


def _sample_grid(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = field.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return grid_x + field[..., 0], grid_y + field[..., 1]


def warp(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``image`` resampled at ``p + field(p)``: the frame ``field`` points into, seen from the frame it lives on."""
    map_x, map_y = _sample_grid(field)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistency(field: np.ndarray, reverse: np.ndarray) -> np.ndarray:
    """Weights c in [0, 1] on ``field``'s grid: 1 where ``reverse`` undoes ``field``, 0 where it does not.

    ``field`` goes from frame A to frame B (on A's grid), ``reverse`` from B to A (on B's grid).
    A pixel is unreliable when the round trip misses (it is occluded in B), when the flow has a
    steep gradient (a motion boundary, where flow methods smear), or when it leaves the image.
    """
    h, w = field.shape[:2]
    map_x, map_y = _sample_grid(field)
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    back = cv2.remap(reverse, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    round_trip = np.square(field + back).sum(axis=2)
    magnitudes = np.square(field).sum(axis=2) + np.square(back).sum(axis=2)
    occluded = round_trip > OCCLUSION_RELATIVE * magnitudes + OCCLUSION_ABSOLUTE
    du_dy, du_dx = np.gradient(field[..., 0])
    dv_dy, dv_dx = np.gradient(field[..., 1])
    steepness = du_dx**2 + du_dy**2 + dv_dx**2 + dv_dy**2
    boundary = steepness > BOUNDARY_RELATIVE * np.square(field).sum(axis=2) + BOUNDARY_ABSOLUTE
    reliable = (inside & ~occluded & ~boundary).astype(np.float32)
    return np.clip(cv2.GaussianBlur(reliable, (0, 0), BLUR_SIGMA), 0.0, 1.0)


@dataclass(frozen=True)
class Motion:
    """How a frame relates to the one before: the flow into it and where that flow holds."""

    field: np.ndarray  # on the current frame's grid, pointing into the previous frame
    weights: np.ndarray  # c in [0, 1], float32 [H, W]

    @property
    def mean_consistency(self) -> float:
        return float(self.weights.mean())

    def warp(self, previous: np.ndarray) -> np.ndarray:
        """An image on the previous frame's grid (its stylized version), moved onto the current one."""
        return warp(previous, self.field)


def motion(previous: np.ndarray, current: np.ndarray) -> Motion:
    """Backward flow (current → previous) and its consistency weights from the forward flow."""
    backward = flow(current, previous)
    forward = flow(previous, current)
    return Motion(backward, consistency(backward, forward))


def is_shot_cut(m: Motion) -> bool:
    """Hardly any pixel is explained by the previous frame: a new shot, to be stylized as a still."""
    return m.mean_consistency < SHOT_CUT_CONSISTENCY


def pair_errors(outputs: Sequence[np.ndarray], frames: Sequence[np.ndarray]) -> list[float | None]:
    """Per frame pair (t−1, t): Σ c ‖o_t − warp(o_{t−1})‖² / Σ c, with flow and c from the input ``frames``.

    None for a pair that starts a new shot (nothing to be consistent with).
    """
    if len(outputs) != len(frames):
        raise ValueError("one output per frame is needed")
    errors: list[float | None] = []
    for t in range(1, len(frames)):
        m = motion(frames[t - 1], frames[t])
        if is_shot_cut(m):
            errors.append(None)
            continue
        diff = np.square(outputs[t].astype(np.float32) - m.warp(outputs[t - 1].astype(np.float32))).sum(axis=2)
        errors.append(float((m.weights * diff).sum() / max(m.weights.sum(), 1e-8)))
    return errors


def warping_error(outputs: Sequence[np.ndarray], frames: Sequence[np.ndarray]) -> float:
    """Lai et al. 2018's temporal warping error: the mean of ``pair_errors`` over pairs within shots.

    The flow and weights come from the input frames (as in Lai et al.), so both modes under
    comparison are measured against the same motion.
    """
    errors = [e for e in pair_errors(outputs, frames) if e is not None]
    return float(np.mean(errors)) if errors else 0.0
