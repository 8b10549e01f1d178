"""Box-constrained optimisation of one image tensor: projected L-BFGS and Adam, and the loop that
runs either of them over one scale.

Both optimisers see only ``evaluate(x) -> (parts, grad)``, ``x`` and the bounds; they know
nothing of VGG, tiles or masks. Every decision is invariant to the objective's scale (a loss
multiplied by 10⁸ takes the same steps): the Gatys objective's magnitude varies by many orders
with the photo, the painting and the user's weights, and torch's L-BFGS (absolute curvature
threshold, first step 1/‖g‖₁, then unit steps along −g) turns a large one into colour noise.

Projected L-BFGS (the active-set idea of L-BFGS-B and of Kim, Sra & Dhillon's projected
quasi-Newton methods): a pixel at a bound whose gradient points outward is frozen for the step,
the two-loop direction is computed on the free pixels, and the step is projected back into the
box. Each step is checked by an Armijo line search along the projected path, whose accepted
point is the next step's start, so a step costs one evaluation when it is good and a few when
it is not; a failed search leaves ``x`` where it was. Curvature pairs are the moves actually
made, kept when yᵀs > ε‖s‖‖y‖. Until the first pair, steps are scaled so that no pixel moves by
more than ``initial_step`` (or by a curvature scale handed over from the previous scale).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..planning.schedule import LBFGS_HISTORY

Parts = dict[str, float]
Evaluator = Callable[[torch.Tensor], tuple[Parts, torch.Tensor]]  # x -> (parts incl. "total", d total / d x)
LossAndGrad = Callable[[torch.Tensor], tuple[float, torch.Tensor]]

ARMIJO_C1 = 1e-4
CURVATURE_EPS = 1e-8  # relative: the pair's cosine must exceed this
MAX_LINE_SEARCH_EVALUATIONS = 8
INITIAL_STEP = 0.05  # the largest per-pixel move of a step with no curvature information, in box units


@dataclass
class StepOutcome:
    loss: float
    grad: torch.Tensor
    evaluations: int
    accepted: bool  # False: the line search found no decrease; x is unchanged
    converged: bool = False  # the projected gradient is zero


class ProjectedLBFGS:
    """L-BFGS on the box [lo, hi]; see the module docstring."""

    def __init__(
        self,
        history: int = LBFGS_HISTORY,
        bounds: tuple[float, float] = (0.0, 1.0),
        initial_step: float = INITIAL_STEP,
        gamma: float | None = None,
    ):
        self.pairs: deque[tuple[torch.Tensor, torch.Tensor, float]] = deque(maxlen=max(1, history))
        self.bounds = bounds
        self.initial_step = initial_step
        self.gamma = gamma  # H₀ = γ I: sᵀy / yᵀy of the newest pair, or handed over from a coarser scale
        self.gradient_step: float | None = None  # the last accepted step length along −γ g without pairs

    def free(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """The pixels that may move: not at a bound with the gradient pushing them outward."""
        lo, hi = self.bounds
        return ~(((x <= lo) & (grad > 0)) | ((x >= hi) & (grad < 0)))

    def direction(self, grad: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
        """−H g on the free pixels by the two-loop recursion (H₀ = γ I), zero on the frozen ones."""
        mask = free.flatten().to(grad.dtype)
        q = -(grad.flatten() * mask)
        alphas = []
        for s, y, rho in reversed(self.pairs):
            alpha = rho * float(s @ q)
            q.add_(y, alpha=-alpha)
            alphas.append(alpha)
        if self.gamma is not None:
            q.mul_(self.gamma)
        for (s, y, rho), alpha in zip(self.pairs, reversed(alphas), strict=True):
            beta = rho * float(y @ q)
            q.add_(s, alpha=alpha - beta)
        return (q * mask).view_as(grad)

    def reset(self) -> None:
        """Forget the curvature pairs (after a failed search), keeping the scale γ."""
        self.pairs.clear()
        self.gradient_step = None

    def _first_trial(self, d: torch.Tensor) -> float:
        if self.pairs:
            return 1.0
        if self.gradient_step is not None:
            return min(1.0, 2.0 * self.gradient_step) if self.gamma is not None else 2.0 * self.gradient_step
        if self.gamma is not None:
            return 1.0
        largest = float(d.abs().max())
        return self.initial_step / largest if largest > 0 else 0.0

    def step(self, x: torch.Tensor, loss: float, grad: torch.Tensor, evaluate: LossAndGrad) -> StepOutcome:
        """One projected quasi-Newton step from ``x`` (moved in place when accepted)."""
        free = self.free(x, grad)
        d = self.direction(grad, free)
        slope = float((grad * d).sum())
        if slope >= 0 and self.pairs:  # numerically not a descent direction: fall back to the gradient
            self.reset()
            d = self.direction(grad, free)
            slope = float((grad * d).sum())
        if slope >= 0 or not math.isfinite(slope):
            return StepOutcome(loss, grad, 0, accepted=False, converged=slope == 0)
        start = x.detach().clone()
        t = self._first_trial(d)
        lo, hi = self.bounds
        for evaluations in range(1, MAX_LINE_SEARCH_EVALUATIONS + 1):
            x.copy_(start).add_(d, alpha=t).clamp_(lo, hi)
            new_loss, new_grad = evaluate(x)
            moved = float((grad * (x - start)).sum())  # the first-order decrease along the projected path
            if math.isfinite(new_loss) and new_loss <= loss + ARMIJO_C1 * moved and moved < 0:
                self._remember(x - start, new_grad - grad, t)
                return StepOutcome(new_loss, new_grad, evaluations, accepted=True)
            t = _backtrack(t, loss, slope, new_loss)
        x.copy_(start)
        self.reset()
        return StepOutcome(loss, grad, MAX_LINE_SEARCH_EVALUATIONS, accepted=False)

    def _remember(self, s: torch.Tensor, y: torch.Tensor, t: float) -> None:
        if not self.pairs:
            self.gradient_step = t
        s, y = s.flatten(), y.flatten()
        ys = float(y @ s)
        if ys > CURVATURE_EPS * float(s.norm()) * float(y.norm()):
            self.pairs.append((s, y, 1.0 / ys))
            self.gamma = ys / float(y @ y)
            self.gradient_step = None


def _backtrack(t: float, loss: float, slope: float, new_loss: float) -> float:
    """The next, shorter trial: the minimiser of the quadratic through f(0), f'(0) and f(t),
    kept within [0.1 t, 0.5 t] (plain halving where the quadratic says nothing)."""
    if not math.isfinite(new_loss):
        return 0.1 * t
    curvature = new_loss - loss - slope * t
    if curvature <= 0:
        return 0.5 * t
    return min(0.5 * t, max(0.1 * t, -slope * t * t / (2.0 * curvature)))


class Adam:
    """Adam with bias correction (Kingma & Ba), on one tensor; invariant to the loss's scale."""

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


@dataclass
class Minimized:
    """The best iterate of one scale's run, and how it ended."""

    x: torch.Tensor
    parts: Parts
    steps: int
    evaluations: int
    reason: str  # "steps", "converged", "stalled", "tolerance" or "stopped"
    gamma: float | None = None  # L-BFGS's curvature scale at the end, for the next scale
    losses: list[float] = field(default_factory=list)  # after each step


def minimize(
    evaluate: Evaluator,
    x0: torch.Tensor,
    optimizer: ProjectedLBFGS | Adam,
    steps: int,
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
    tolerance: float = 0.0,
    window: int = 5,
    on_step: Callable[[int, float, torch.Tensor], bool] | None = None,
) -> Minimized:
    """Up to ``steps`` steps from ``x0``; returns the best point seen, never a worse one.

    ``tolerance`` > 0 stops once the relative decrease per step over the last ``window`` steps
    falls below it. ``on_step(step, loss, best_x)`` after every step returns False to stop.
    """
    x = x0.detach().clone().clamp_(*bounds)
    parts, grad = evaluate(x)
    evaluations = 1
    best_x, best_parts = x.clone(), parts
    losses: list[float] = []
    last: dict[str, object] = {"parts": parts}

    def loss_and_grad(point: torch.Tensor) -> tuple[float, torch.Tensor]:
        nonlocal evaluations
        values, g = evaluate(point)
        evaluations += 1
        last["parts"] = values
        return values["total"], g

    def consider(point: torch.Tensor, values: Parts) -> None:
        nonlocal best_x, best_parts
        if math.isfinite(values["total"]) and not values["total"] >= best_parts["total"]:
            best_x, best_parts = point.clone(), values

    loss = parts["total"]
    reason, failures, step = "steps", 0, 0
    while step < steps:
        if isinstance(optimizer, Adam):
            optimizer.step(x, grad)
            x.clamp_(*bounds)
            loss, grad = loss_and_grad(x)
        else:
            outcome = optimizer.step(x, loss, grad, loss_and_grad)
            if outcome.converged:
                reason = "converged"
                break
            if not outcome.accepted:
                failures += 1
                if failures >= 2:  # twice no decrease, from the gradient itself: nothing more to gain here
                    reason = "stalled"
                    break
                continue
            failures = 0
            loss, grad = outcome.loss, outcome.grad
        step += 1
        consider(x, last["parts"])  # type: ignore[arg-type]
        losses.append(loss)
        if on_step is not None and not on_step(step, loss, best_x):
            reason = "stopped"
            break
        if tolerance > 0 and len(losses) > window:
            before, now = losses[-window - 1], min(losses[-window:])
            if now > 0 and (before - now) / (window * now) < tolerance:
                reason = "tolerance"
                break
    gamma = optimizer.gamma if isinstance(optimizer, ProjectedLBFGS) else None
    return Minimized(best_x, best_parts, step, evaluations, reason, gamma, losses)
