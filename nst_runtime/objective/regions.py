"""Regions: a different style in each part of the image (Gatys et al. 2017, "Controlling
Perceptual Factors in Neural Style Transfer", §4), with guided Gram matrices.

Each style gets a mask m in the content's size (soft edges allowed). At every layer its Gram is
taken over the masked features, G = (F ⊙ m)(F ⊙ m)ᵀ / Σ m², and matched to the Gram of its own
painting (or of the part of it a style mask selects). Pixels no mask covers get the content
loss only and the result is the photo there.

How a mask reaches a layer (§4.1 discusses three ways: downsampling, "all neurons that see the
region", "neurons that see only the region"): the mask is resampled to the scale's size with
antialiased bilinear filtering, then averaged over 2 × 2 cells once per pooling, exactly as
VGG's pools tile the image (floor sizes, the same cell alignment). A position's weight is then
the share of its pooling cell the region covers: soft, area-preserving and aligned with the
feature it weighs. The receptive-field variants were not chosen because VGG-19's relu5_1 sees
about 200 px: at the coarse scales (128 px) an eroded ("inside") mask of anything smaller than
the image has nothing left at relu4_1/relu5_1, and a dilated ("all") one covers everything, so
either would drop or blur the deep statistics the regions are for. The same function resamples
the style masks for the targets and the content masks for the image being optimised.

Balance: a region's style weight is multiplied by the mean of m² on each layer's grid (its
area), so every position feels the same style pressure against the content as in a whole-image
run with that style: a region looks as strongly painted as the same part of today's run.
``style_weights`` then scale each region relative to the strongest (equal weights: each region
at the run's full strength). A mask of ones reproduces the unmasked objective exactly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import NSTError
from ..imaging.images import ImageData
from ..imaging.masks import Mask, fit, load_mask, on_layers, resample
from .losses import gram


def layer_grams(features: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Each layer's Gram matrix, guided by ``mask`` ([H, W] at the image's size) when given."""
    grids = on_layers(mask, {k: tuple(f.shape[2:]) for k, f in features.items()}) if mask is not None else {}
    return {layer: gram(f, grids.get(layer)) for layer, f in features.items()}


@dataclass(frozen=True)
class Regions:
    """Per style: its mask at the content's size (None: the whole image) and its style mask at the
    style image's size (None: the whole painting); each scale resamples them from these.
    ``regional`` is False when only style masks were given: the image is then styled everywhere,
    as without regions."""

    masks: tuple[torch.Tensor | None, ...]
    style_masks: tuple[torch.Tensor | None, ...]
    regional: bool
    coverage: np.ndarray | None = None  # [H, W] at the content's size where some pixel is left out


def prepare(
    masks: Sequence[object | None] | None,
    style_masks: Sequence[object | None] | None,
    content: ImageData,
    styles: Sequence[ImageData],
    emit_note,
    blend: Sequence[float] | None = None,
) -> Regions | None:
    """Load, check and size the run's masks; None when it has none (the run is as without regions).
    ``blend`` (the style weights): a style of weight 0 paints nowhere, whatever its mask."""
    if masks is None and style_masks is None:
        return None
    count = len(styles)
    fitted: list[Mask | None] = _loaded(masks, count, "masks", "mask")
    fitted = [fit(m, content.height, content.width, "the content") if m else None for m in fitted]
    style_fitted = _loaded(style_masks, count, "style_masks", "style mask")
    style_fitted = [
        fit(m, s.height, s.width, f"style {i + 1}") if m else None
        for i, (m, s) in enumerate(zip(style_fitted, styles, strict=True))
    ]
    for i, m in enumerate(style_fitted):
        if m is not None and m.empty:
            raise NSTError(f"style mask {i + 1} is empty (all zero): {m.name} selects nothing of its painting")
    for m in (*fitted, *style_fitted):
        for note in m.notes if m else ():
            emit_note(note)
    coverage = None
    if masks is not None:
        active = [share > 0 for share in region_shares(blend, count)]
        if all(m is not None and m.empty for m, on in zip(fitted, active, strict=True) if on):
            raise NSTError("every mask is empty (all zero): no style would be applied anywhere")
        for i, m in enumerate(fitted):
            if m is not None and m.empty:
                emit_note(f"{m.name} is empty (all zero): style {i + 1} does nothing")
        full = np.ones((content.height, content.width), np.float32)
        painted = [(m.values if m else full) for m, on in zip(fitted, active, strict=True) if on]
        coverage = np.clip(sum(painted), 0.0, 1.0).astype(np.float32)
        if coverage.min() >= 1.0 - 1e-6:
            coverage = None  # the masks cover every pixel: nothing to keep
    return Regions(_tensors(fitted), _tensors(style_fitted), masks is not None, coverage)


def _tensors(masks: list[Mask | None]) -> tuple[torch.Tensor | None, ...]:
    """What the objective needs: None where a mask selects everything (the plain Gram)."""
    return tuple(None if m is None or m.full else torch.from_numpy(m.values) for m in masks)


def _loaded(sources: Sequence[object | None] | None, count: int, what: str, role: str) -> list[Mask | None]:
    if sources is None:
        return [None] * count
    if isinstance(sources, str | os.PathLike | Image.Image | np.ndarray | Mask):
        sources = [sources]
    sources = list(sources)
    if len(sources) != count:
        entries = f"{len(sources)} entr{'y' if len(sources) == 1 else 'ies'}"
        raise NSTError(f"{what} has {entries} for {count} style image(s): give one per style")
    return [None if s is None else load_mask(s, f"{role} {i + 1}") for i, s in enumerate(sources)]


def region_shares(blend: Sequence[float] | None, count: int) -> list[float]:
    """Each region's share of the style weight: relative to the strongest, so equal weights give
    every region the full strength of a single-style run."""
    weights = [float(w) for w in blend] if blend is not None else [1.0] * count
    top = max(weights)
    return [w / top for w in weights]


def keep_photo(result: np.ndarray, photo: np.ndarray, coverage: np.ndarray | None) -> np.ndarray:
    """The photo where no region covers it, blended by the coverage across soft edges."""
    if coverage is None:
        return result
    if coverage.shape != result.shape[:2]:
        coverage = resample(torch.from_numpy(coverage), *result.shape[:2]).numpy()
    c = coverage[..., None]
    return (photo + c * (result - photo)).astype(np.float32)
