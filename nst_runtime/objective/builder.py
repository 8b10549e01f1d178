"""The targets of each scale: the content's features and the styles' Gram matrices at that size,
computed once per size, as an ``Objective`` (``nst_runtime.objective.terms``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from nst_export.architecture import output_shape

from ..imaging.masks import on_layers, resample
from ..imaging.tensors import resize
from ..options import Options
from ..vgg.features import VGG
from .losses import CONTENT_LAYER, STYLE_LAYERS, content_loss_weight, style_loss_weight
from .regions import Regions, layer_grams, region_shares
from .terms import ContentTerm, Objective, PixelTerm, StyleTerm, TVTerm

STYLE_SIZE_TOLERANCE = 0.02


class Targets(Protocol):
    """Where the builder gets VGG features and Gram matrices of its target images (whole or tiled:
    ``nst_runtime.tiled.Extractor``)."""

    def features(self, image: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]: ...

    def grams(
        self, image: torch.Tensor, layers: tuple[str, ...], mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]: ...


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
