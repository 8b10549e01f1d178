"""What one scale optimises, as data: content target, style terms, pixel-space terms.

The engine builds an ``Objective`` per scale (``ObjectiveBuilder.at``); an evaluator
(``nst_runtime.evaluate``) turns it into loss and gradient, whole or tiled, fused or through
autograd. Keeping the objective free of compute is what lets regions (masked style terms),
frames (a temporal pixel term) and tiles compose without each knowing the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from nst_export.architecture import output_shape

from .features import VGG
from .losses import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    content_loss,
    content_loss_weight,
    style_loss,
    style_loss_weight,
    tv_loss,
)
from .options import Options
from .regions import Regions, layer_grams, on_layers, region_shares, resample

STYLE_SIZE_TOLERANCE = 0.02
TV_SCALE = 1e6  # makes --tv-weight 1 a visible but gentle smoothing next to the default content/style balance

PixelLoss = Callable[[torch.Tensor], torch.Tensor]  # x [1, 3, h, w] → a scalar tensor


class Targets(Protocol):
    """Where the builder gets VGG features and Gram matrices of its target images (whole or tiled:
    ``nst_runtime.tiled.Extractor``)."""

    def features(self, image: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]: ...

    def grams(
        self, image: torch.Tensor, layers: tuple[str, ...], mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]: ...


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


def resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bicubic with antialiasing, so downscaling does not alias and upscaling stays smooth."""
    if image.shape[2:] == (height, width):
        return image
    return F.interpolate(image, size=(height, width), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def style_size(style: torch.Tensor, height: int, width: int, scale: float) -> tuple[int, int]:
    """The style's size at one scale: its own aspect ratio, with the output's area or its own,
    whichever is smaller, times ``scale``².

    At ``scale`` 1 a painting is never upsampled (crowsonkb's style_transfer never upsamples one
    either): that would only blur its strokes. So once the output is larger than the painting
    (a photo at its own size), the strokes keep their size in the painting's pixels; a
    ``scale`` above 1 still enlarges them on request, one below 1 shrinks them.

    A style already within 2 % of that size is used as it is: resampling by a hair still low-pass
    filters every pixel (bicubic at 0.998× shifted the relu4_1 Gram by 11 %), while a Gram matrix,
    averaged over positions, does not care about a few rows more or less.
    """
    sh, sw = style.shape[2], style.shape[3]
    factor = scale * min(1.0, math.sqrt(height * width / (sh * sw)))
    if abs(factor - 1.0) <= STYLE_SIZE_TOLERANCE:
        return sh, sw
    return max(16, round(sh * factor)), max(16, round(sw * factor))


@dataclass
class ObjectiveBuilder:
    """The prepared inputs of a run; ``at(h, w)`` computes that scale's targets with VGG.

    With ``regions`` (nst_runtime.regions), each style is matched only inside its mask, by guided
    Gram terms; style masks restrict which part of a painting its statistics come from.
    """

    vgg: VGG
    options: Options
    content: torch.Tensor  # [1, 3, H, W] at the computation size, colour handling applied
    styles: list[torch.Tensor]
    blend: list[float]
    pixel_terms: Sequence[PixelTerm] = ()
    targets: Targets | None = None  # None: the whole image through ``vgg``
    regions: Regions | None = None
    _style_grams: dict[tuple[int, int, int], dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)

    @torch.no_grad()
    def at(self, height: int, width: int) -> Objective:
        opts = self.options
        content = None
        if opts.content_weight > 0:
            sized = resize(self.content, height, width)
            if self.targets is not None:
                target = self.targets.features(sized, (CONTENT_LAYER,))[CONTENT_LAYER]
            else:
                target = self.vgg.features(sized, (CONTENT_LAYER,))[CONTENT_LAYER].clone()
            content = ContentTerm(CONTENT_LAYER, target, content_loss_weight(opts.content_weight))
        styles: tuple[StyleTerm, ...] = ()
        if opts.style_weight > 0 and self.regions is not None and self.regions.regional:
            styles = self.region_terms(height, width)
        elif opts.style_weight > 0:
            grams = self.style_grams(height, width)
            styles = tuple(
                StyleTerm(layer, g, style_loss_weight(opts.style_weight, g.shape[0])) for layer, g in grams.items()
            )
        device = self.vgg.torch_device
        terms = [*([TVTerm(opts.tv_weight)] if opts.tv_weight > 0 else []), *self.pixel_terms]
        pixel = tuple((t.name, t.at(height, width, device)) for t in terms)
        return Objective(height, width, content, styles, pixel)

    @torch.no_grad()
    def style_grams(self, height: int, width: int) -> dict[str, torch.Tensor]:
        """The blended style Gram per style layer for an output of this size."""
        grams: dict[str, torch.Tensor] = {}
        for index, share in enumerate(self.blend):
            if share == 0:
                continue
            for layer, g in self.style_gram(index, height, width).items():
                grams[layer] = grams[layer] + g * share if layer in grams else g * share
        return grams

    @torch.no_grad()
    def style_gram(self, index: int, height: int, width: int) -> dict[str, torch.Tensor]:
        """One style's Gram per style layer (guided by its style mask) for an output of this size,
        cached per size."""
        key = (index, height, width)
        if key not in self._style_grams:
            style = self.styles[index]
            sized = resize(style, *style_size(style, height, width, self.options.style_scale))
            style_mask = self.regions.style_masks[index] if self.regions is not None else None
            if style_mask is not None:  # a style mask guides the style's own Gram
                style_mask = resample(style_mask.to(sized.device), sized.shape[2], sized.shape[3])
            if self.targets is not None:
                self._style_grams[key] = self.targets.grams(sized, STYLE_LAYERS, style_mask)
            else:
                self._style_grams[key] = layer_grams(self.vgg.features(sized, STYLE_LAYERS), style_mask)
        return self._style_grams[key]

    def region_terms(self, height: int, width: int) -> tuple[StyleTerm, ...]:
        """Guided Gram terms: per style and layer its target, its mask on the layer's grid and a
        weight that scales with the region's area there (see nst_runtime.regions)."""
        assert self.regions is not None
        plan = self.vgg.graphs.plan
        shapes = {layer: output_shape(plan, layer, height, width)[2:] for layer in STYLE_LAYERS}
        device = self.vgg.torch_device
        terms: list[StyleTerm] = []
        shares = region_shares(self.options.style_blend, len(self.styles))
        for index, (mask, share) in enumerate(zip(self.regions.masks, shares, strict=True)):
            if share == 0:
                continue
            grid = on_layers(resample(mask, height, width), shapes) if mask is not None else {}
            for layer, target in self.style_gram(index, height, width).items():
                m = grid.get(layer)
                area = float(m.square().mean()) if m is not None else 1.0
                if area == 0:
                    continue
                weight = style_loss_weight(self.options.style_weight, target.shape[0]) * share * area
                terms.append(StyleTerm(layer, target, weight, m.to(device) if m is not None else None))
        return tuple(terms)
