"""L-BFGS and Adam on one image tensor, with the loss and gradient coming from our graphs.

torch.optim's optimizers import torch._dynamo on first use (2.5 s on the 2-core machines this
runs on: half of a run's start-up), so the two optimizers the engine needs are written out here.
The L-BFGS is torch's algorithm without line search (``LBFGS(max_iter=1, lr=1)``, as pastiche
uses it: the first step scaled by 1/‖g‖₁, then unit steps along the two-loop-recursion
direction with H₀ = sᵀy / yᵀy); a test checks it takes the same steps as torch's. On top it can
backtrack (Armijo) for the first steps of a scale, where the curvature pairs are unreliable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import torch

Evaluate = Callable[[torch.Tensor], tuple[float, torch.Tensor]]  # x -> (loss, d loss / d x)

ARMIJO_C1 = 1e-4
MAX_BACKTRACKS = 12


class LBFGS:
    """With ``bounds``, every step is projected into the box (pixels stay in [0, 1]); the curvature
    pairs are taken from the actual, projected moves, so they stay consistent."""

    def __init__(self, history: int = 100, curvature_eps: float = 1e-10, bounds: tuple[float, float] | None = None):
        self.pairs: deque[tuple[torch.Tensor, torch.Tensor, float]] = deque(maxlen=history)
        self.curvature_eps = curvature_eps
        self.bounds = bounds
        self.prev: tuple[torch.Tensor, torch.Tensor] | None = None  # (x, grad) of the last step's start

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """-H·grad by the two-loop recursion over the stored (s, y) pairs."""
        q = -grad.flatten()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            alpha = rho * float(s @ q)
            q.add_(y, alpha=-alpha)
            alphas.append(alpha)
        if self.pairs:
            s, y, _ = self.pairs[-1]
            q.mul_(float(s @ y) / float(y @ y))
        for (s, y, rho), alpha in zip(self.pairs, reversed(alphas), strict=True):
            beta = rho * float(y @ q)
            q.add_(s, alpha=alpha - beta)
        return q.view_as(grad)

    def step(self, x: torch.Tensor, loss: float, grad: torch.Tensor, evaluate: Evaluate | None = None):
        """Move ``x`` in place from a point with known loss and gradient.

        Without ``evaluate`` this takes torch's unit step (one evaluation per step, made by the
        caller at the new point). With it, the step is backtracked until the loss decreases
        enough, and the (loss, grad) at the accepted point is returned for the next step.
        """
        if self.prev is not None:
            s = (x - self.prev[0]).flatten()
            y = (grad - self.prev[1]).flatten()
            ys = float(y @ s)
            if ys > self.curvature_eps:
                self.pairs.append((s, y, 1.0 / ys))
        d = self.direction(grad)
        t = 1.0 if self.pairs or self.prev is not None else min(1.0, 1.0 / float(grad.abs().sum()))
        self.prev = (x.detach().clone(), grad.detach().clone())
        if evaluate is None:
            self._project(x.add_(d, alpha=t))
            return None
        slope = float((grad * d).sum())
        start = self.prev[0]
        for _ in range(MAX_BACKTRACKS):
            self._project(x.copy_(start).add_(d, alpha=t))
            new_loss, new_grad = evaluate(x)
            if new_loss <= loss + ARMIJO_C1 * t * slope:
                return new_loss, new_grad
            t *= 0.5
        return new_loss, new_grad  # the smallest step tried: the caller's blow-up guard handles the rest

    def _project(self, x: torch.Tensor) -> None:
        if self.bounds is not None:
            x.clamp_(*self.bounds)


class Adam:
    """Adam with bias correction (Kingma & Ba), on one tensor."""

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.t = 0

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        if self.m is None or self.v is None:
            self.m, self.v = torch.zeros_like(x), torch.zeros_like(x)
        self.t += 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v / (1 - b2**self.t)).sqrt_().add_(self.eps)
        x.addcdiv_(self.m, denom, value=-self.lr / (1 - b1**self.t))
