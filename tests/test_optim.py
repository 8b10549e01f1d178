"""The optimisers' guarantees on synthetic objectives (no VGG): bounds, scale invariance, never
returning worse than the best iterate, a bounded number of evaluations per step."""

from __future__ import annotations

import math

import pytest
import torch

from nst_runtime.engine.optim import Adam, ProjectedLBFGS, minimize


def problem(seed: int = 0, n: int = 30, scale: float = 1.0, shift: float = 0.0):
    """A smooth non-quadratic objective, like a Gram loss, on the box [0, 1]ⁿ:
    f(x) = scale · (‖A (x − c)‖² + 0.1 ‖x − c‖⁴), with c partly outside the box (+ ``shift``)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n + 10, n, generator=gen, dtype=torch.float64)
    center = torch.rand(n, generator=gen, dtype=torch.float64) * 1.6 - 0.3 + shift
    x0 = torch.rand(n, generator=gen, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        r = x - center
        return scale * ((a @ r).pow(2).sum() + 0.1 * r.pow(2).sum().pow(2))

    calls = []

    def evaluate(x: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        xt = x.detach().requires_grad_(True)
        value = f(xt)
        value.backward()
        calls.append(float(value.detach()))
        return {"total": float(value.detach())}, xt.grad

    return x0, f, evaluate, calls


def kkt_residual(x: torch.Tensor, grad: torch.Tensor) -> float:
    """The projected gradient's size: zero exactly at a box-constrained minimiser."""
    return float((x - (x - grad).clamp(0, 1)).abs().max())


def test_lbfgs_converges_to_the_box_constrained_minimiser():
    x0, f, evaluate, _ = problem()
    result = minimize(evaluate, x0, ProjectedLBFGS(history=10), 200)
    assert result.x.min() >= 0 and result.x.max() <= 1
    xt = result.x.clone().requires_grad_(True)
    f(xt).backward()
    assert kkt_residual(result.x, xt.grad) < 1e-4 * float(xt.grad.abs().max() + 1)
    assert ((result.x == 0) | (result.x == 1)).sum() > 0  # the minimiser lies partly on the bounds


@pytest.mark.parametrize("scale", [1e-12, 1e-6, 1e4, 1e9])
def test_decisions_do_not_depend_on_the_objectives_scale(scale):
    """A loss ×c takes the same steps: the first step is sized by the largest pixel move, and the
    curvature test is relative (an absolute yᵀs > 1e-10 dropped every pair of a tiny loss, and a
    huge loss's unit step along −g saturated the image)."""
    x0, _, plain, _ = problem(3)
    _, _, scaled, _ = problem(3, scale=scale)
    a = minimize(plain, x0, ProjectedLBFGS(history=10), 30)
    b = minimize(scaled, x0, ProjectedLBFGS(history=10), 30)
    assert torch.allclose(a.x, b.x, atol=1e-6)
    assert a.evaluations == b.evaluations
    assert b.parts["total"] == pytest.approx(a.parts["total"] * scale, rel=1e-6)


def test_a_loss_whose_first_pairs_fall_below_an_absolute_threshold_still_converges():
    """The failure of issue 10: with ‖g‖ huge the first scaled step is tiny, its yᵀs < 1e-10
    would be dropped, and the next step must not be a unit step along raw −g."""
    x0, _, evaluate, calls = problem(4, n=200, scale=1e-13)
    result = minimize(evaluate, x0, ProjectedLBFGS(history=20), 40)
    assert result.parts["total"] < 0.05 * calls[0]
    assert result.evaluations <= 2 * result.steps + 1


def test_never_returns_a_worse_point_than_the_best_seen():
    x0, _, evaluate, calls = problem(5)
    result = minimize(evaluate, x0, Adam(0.9), 25)  # a far too large learning rate: the loss jumps around
    assert result.parts["total"] == min(calls)
    lbfgs = minimize(evaluate, x0, ProjectedLBFGS(), 25)
    assert lbfgs.parts["total"] <= min(calls) + 1e-12


def test_a_failed_line_search_leaves_x_where_it_was():
    """A non-smooth cliff just beyond the start: no trial point decreases the loss."""
    x0 = torch.full((10,), 0.5, dtype=torch.float64)

    def evaluate(x: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        moved = float((x - x0).abs().max())
        return {"total": 1.0 if moved == 0 else 10.0 + moved}, -torch.ones_like(x)

    opt = ProjectedLBFGS()
    result = minimize(evaluate, x0, opt, 10)
    assert torch.equal(result.x, x0)
    assert result.reason == "stalled" and result.parts["total"] == 1.0
    assert result.evaluations <= 2 * 8 + 1  # each search is bounded


def test_one_evaluation_per_step_once_the_curvature_is_known():
    x0, _, evaluate, _ = problem(6, n=100)
    result = minimize(evaluate, x0, ProjectedLBFGS(history=20), 60)
    late = result.evaluations - 1 - 5 * 2  # generous: up to two per step in the first five
    assert late <= 1.2 * (result.steps - 5)


def test_frozen_pixels_stay_on_their_bound():
    """Pixels at a bound whose gradient points outward do not move, whatever the curvature says."""
    x0, _, evaluate, _ = problem(7, shift=2.0)  # the unconstrained minimiser is far above the box
    result = minimize(evaluate, x0, ProjectedLBFGS(), 50)
    assert result.x.max() <= 1 and result.x.min() >= 0
    assert (result.x == 1).float().mean() > 0.5


def test_early_stop_when_the_relative_decrease_per_step_is_small():
    x0, _, evaluate, _ = problem(8)
    full = minimize(evaluate, x0, ProjectedLBFGS(), 200)
    early = minimize(evaluate, x0, ProjectedLBFGS(), 200, tolerance=1e-3)
    assert early.reason == "tolerance" and early.steps < full.steps
    assert early.parts["total"] <= 1.05 * full.parts["total"] + 1e-9


def test_on_step_can_stop_the_run_and_sees_the_best_point():
    x0, _, evaluate, _ = problem(9)
    seen = []

    def on_step(step, loss, best):
        seen.append((step, loss, best.clone()))
        return step < 4

    result = minimize(evaluate, x0, ProjectedLBFGS(), 50, on_step=on_step)
    assert result.reason == "stopped" and result.steps == 4
    assert torch.equal(seen[-1][2], result.x)


def test_adam_takes_torchs_steps():
    x0, f, evaluate, _ = problem(2)
    reference = x0.clone().requires_grad_(True)
    torch_opt = torch.optim.Adam([reference], lr=0.05)
    ours, opt = x0.clone(), Adam(0.05)
    for _ in range(20):
        torch_opt.zero_grad()
        f(reference).backward()
        torch_opt.step()
        opt.step(ours, evaluate(ours)[1])
        assert torch.allclose(ours, reference.detach(), rtol=1e-9, atol=1e-9)


def test_the_curvature_scale_handed_over_starts_with_a_full_step():
    """A scale that inherits γ from the coarser one tries x − γ g first, not a tiny scaled step."""
    x0, _, evaluate, _ = problem(10)
    first = minimize(evaluate, x0, ProjectedLBFGS(), 30)
    assert first.gamma is not None and math.isfinite(first.gamma) and first.gamma > 0
    gamma = first.gamma
    opt = ProjectedLBFGS(gamma=gamma)
    x = x0.clone()
    parts, grad = evaluate(x)
    trials = []

    def loss_and_grad(point):
        trials.append(point.clone())
        values, g = evaluate(point)
        return values["total"], g

    opt.step(x, parts["total"], grad, loss_and_grad)
    free = opt.free(x0, grad)
    assert torch.allclose(trials[0], (x0 - gamma * grad * free).clamp(0, 1))
