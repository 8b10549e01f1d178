"""Above the preview's size: the scale's own objective plus the look, the preview's objective
evaluated on the image resized to the preview's size.

The look (composition, stroke size relative to the image, colours, the photo's shapes) was set
at the preview's size, where the painting is matched relative to the image, and the user
approved it there. A larger scale keeps it by evaluating that same objective on its image
resized down; the scale's own objective, with the painting at its own pixels, adds the brush
texture at 100 % (docs/benchmarks.md §10).
"""

from __future__ import annotations

import torch

from .base import Evaluator, Parts


def downsample(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The image at the look's size, differentiably: antialiased bilinear, a triangle filter as
    wide as the factor with no negative lobes, so its adjoint spreads each small pixel's gradient
    smoothly over the large image."""
    if image.shape[2:] == (height, width):
        return image
    return torch.nn.functional.interpolate(image, size=(height, width), mode="bilinear", antialias=True)


class LookEvaluator:
    """``own`` at the image's size plus ``look`` at ``size``: one evaluation of each; the parts
    are the own objective's, with the look's total as ``look``."""

    def __init__(self, own: Evaluator, look: Evaluator, size: tuple[int, int]):
        self.own, self.look, self.size = own, look, size

    def __call__(self, x: torch.Tensor) -> tuple[Parts, torch.Tensor]:
        parts, grad = self.own(x)
        big = x.detach().requires_grad_(True)
        small = downsample(big, *self.size)
        look_parts, look_grad = self.look(small.detach().contiguous())
        small.backward(look_grad)
        assert big.grad is not None
        parts = {**parts, "look": look_parts["total"]}
        parts["total"] += parts["look"]
        return parts, grad + big.grad
