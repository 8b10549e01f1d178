"""What every evaluation strategy shares: the call the optimizer sees, the pixel-space terms added
through torch autograd, and an evaluator that can keep one evaluation for the next phase."""

from __future__ import annotations

from typing import Protocol

import torch

from ..objective.terms import Objective
from ..vgg.graphs import style_part

Parts = dict[str, float]


class Evaluator(Protocol):
    def __call__(self, x: torch.Tensor) -> tuple[Parts, torch.Tensor]: ...


def with_pixel_terms(objective: Objective, x: torch.Tensor, parts: Parts, grad: torch.Tensor | None):
    """Adds the pixel-space terms' values and gradients (torch autograd) to a VGG evaluation."""
    if not objective.pixel:
        return parts, grad
    xt = x.detach().requires_grad_(True)
    losses = objective.pixel_losses(xt)
    sum(losses.values()).backward()
    for name, value in losses.items():
        parts[name] = float(value.detach())
        parts["total"] += parts[name]
    return parts, xt.grad if grad is None else grad + xt.grad


class Remembering:
    """An evaluator that can keep one evaluation, so that asking again at that very point is free.

    The detail pass's last step is evaluated with the full objective (``restricted_total`` reads
    the detail objective's value off its parts), and the full pass then starts at that point:
    one detail evaluation fewer per scale (docs/benchmarks.md §1a).
    """

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self.kept: tuple[torch.Tensor, Parts, torch.Tensor] | None = None

    def keep(self, x: torch.Tensor) -> tuple[Parts, torch.Tensor]:
        parts, grad = self.evaluator(x)
        self.kept = (x.detach().clone(), parts, grad)
        return dict(parts), grad.clone()

    def __call__(self, x: torch.Tensor) -> tuple[Parts, torch.Tensor]:
        kept, self.kept = self.kept, None
        if kept is not None and kept[0].shape == x.shape and torch.equal(kept[0], x):
            return kept[1], kept[2]
        return self.evaluator(x)


def restricted_total(parts: Parts, restricted: Objective) -> float | None:
    """``restricted``'s value (``Objective.restricted``: every style term on some layers, and the
    pixel terms) from the parts of the full objective's evaluation, or None where those lack
    per-layer parts (only the one-graph losses report them)."""
    names = {style_part(term.layer) for term in restricted.styles}  # a layer's part sums all its terms
    if any(n not in parts for n in names):
        return None
    return sum(parts[n] for n in names) + sum(parts[name] for name, _ in restricted.pixel)
