"""The Gatys et al. loss formulas in torch, and the normalisation every evaluator shares.

The normalisation follows pastiche's objective (each style layer is 10 / C² × the MSE of Gram
matrices normalised by the number of positions, Gram = F Fᵀ / (h w); content is a multiple of
the MSE of relu4_2), so the balance does not drift with image size. Pastiche weighs content
0.01; run to convergence, as coarse-to-fine does, that washes the photo out, so content here
weighs 50 × that: ``content_weight=PASTICHE_CONTENT_WEIGHT`` gives pastiche's exact objective.

These functions are the reference: the fused graph (export/torch_loss.py) and the tiled
evaluator compute the same numbers and are tested against them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_SCALE = 0.5
PASTICHE_CONTENT_WEIGHT = 0.01 / CONTENT_SCALE
STYLE_SCALE = 10.0


def gram(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """[1, C, h, w] → [C, C], averaged over positions so it does not grow with image size.

    With ``mask`` ([h, w] weights) it is Gatys et al.'s guided Gram, (F ⊙ m)(F ⊙ m)ᵀ / Σ m²:
    a mask of ones gives the plain Gram.
    """
    flat = features.flatten(2)[0]
    if mask is None:
        return flat @ flat.T / flat.shape[1]
    m = mask.reshape(1, -1).to(flat.dtype)
    weighted = flat * m
    return weighted @ weighted.T / (m * m).sum().clamp_min(1e-12)


def content_loss_weight(user_weight: float) -> float:
    """The multiplier of mean((F − T)²) for a user's content weight."""
    return user_weight * CONTENT_SCALE


def style_loss_weight(user_weight: float, channels: int) -> float:
    """The multiplier of mean((G − A)²) for one style layer with ``channels`` channels."""
    return user_weight * STYLE_SCALE / channels**2


def content_loss(features: torch.Tensor, target: torch.Tensor, weight: float) -> torch.Tensor:
    return weight * F.mse_loss(features, target)


def style_loss(
    features: torch.Tensor, target_gram: torch.Tensor, weight: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    return weight * F.mse_loss(gram(features, mask), target_gram)


def tv_loss(image: torch.Tensor, weight: float) -> torch.Tensor:
    """Squared total variation (mean over pixels): suppresses high-frequency noise."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return weight * (dx.pow(2).mean() + dy.pow(2).mean())
