"""What one scale optimises, as data: content target, style terms, pixel-space terms.

The engine builds an ``Objective`` per scale (``ObjectiveBuilder.at``); an evaluator
(``nst_runtime.evaluation``) turns it into loss and gradient, whole or tiled, fused or through
autograd. Keeping the objective free of compute is what lets regions (masked style terms),
frames (a temporal pixel term) and tiles compose without each knowing the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from .losses import content_loss, style_loss, tv_loss

TV_SCALE = 1e6  # makes --tv-weight 1 a visible but gentle smoothing next to the default content/style balance

PixelLoss = Callable[[torch.Tensor], torch.Tensor]  # x [1, 3, h, w] → a scalar tensor


class PixelTerm(Protocol):
    """A differentiable loss on the image itself (TV, temporal consistency, …), given per scale."""

    name: str

    def at(self, height: int, width: int, device: torch.device) -> PixelLoss: ...


@dataclass(frozen=True)
class ContentTerm:
    layer: str
    target: torch.Tensor  # [1, C, h, w] features of the content at this scale
    weight: float  # multiplies mean((F − T)²)


@dataclass(frozen=True)
class StyleTerm:
    layer: str
    target: torch.Tensor  # [C, C] Gram matrix (a blend of several styles' is still one)
    weight: float  # multiplies mean((G − A)²)
    mask: torch.Tensor | None = None  # [h_l, w_l] per-position weights on this layer's grid: a guided Gram


@dataclass(frozen=True)
class Objective:
    height: int
    width: int
    content: ContentTerm | None
    styles: tuple[StyleTerm, ...]
    pixel: tuple[tuple[str, PixelLoss], ...] = ()

    @property
    def layers(self) -> tuple[str, ...]:
        """The VGG taps this objective reads."""
        names = {t.layer for t in self.styles}
        if self.content is not None:
            names.add(self.content.layer)
        return tuple(sorted(names))

    @property
    def empty(self) -> bool:
        return not self.layers and not self.pixel

    def restricted(self, layers: Sequence[str]) -> Objective:
        """The style terms on ``layers`` and the pixel terms only: the detail pass's objective."""
        styles = tuple(t for t in self.styles if t.layer in layers)
        return Objective(self.height, self.width, None, styles, self.pixel)

    def feature_losses(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Content and style parts from VGG features (torch, differentiable): the reference formulas."""
        zero = next(iter(features.values())).new_zeros(()) if features else torch.zeros(())
        content = (
            content_loss(features[self.content.layer], self.content.target, self.content.weight)
            if self.content is not None
            else zero
        )
        style = sum((style_loss(features[t.layer], t.target, t.weight, t.mask) for t in self.styles), zero)
        return {"content": content, "style": style}

    def pixel_losses(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: loss(image) for name, loss in self.pixel}


@dataclass(frozen=True)
class TVTerm:
    """Squared total variation; ``weight`` in the user's terms (1: gentle)."""

    weight: float
    name: str = "tv"

    def at(self, height: int, width: int, device: torch.device) -> PixelLoss:
        weight = self.weight * TV_SCALE
        return lambda image: tv_loss(image, weight)
