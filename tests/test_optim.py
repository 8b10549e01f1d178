"""The engine's optimisers take the same steps as torch.optim's (which cost a torch._dynamo import)."""

from __future__ import annotations

import torch

from nst_runtime.optim import LBFGS, Adam


def problem(seed: int = 0):
    """A smooth non-quadratic objective, like a Gram loss: f(x) = ‖A x − b‖² + 0.1 ‖x‖⁴."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(40, 30, generator=gen, dtype=torch.float64)
    b = torch.randn(40, generator=gen, dtype=torch.float64)
    x0 = torch.randn(30, generator=gen, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return (a @ x - b).pow(2).sum() + 0.1 * x.pow(2).sum().pow(2)

    def evaluate(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        xt = x.detach().requires_grad_(True)
        value = f(xt)
        value.backward()
        return float(value.detach()), xt.grad

    return x0, f, evaluate


def test_lbfgs_takes_torchs_steps():
    x0, f, evaluate = problem()
    reference = x0.clone().requires_grad_(True)
    torch_opt = torch.optim.LBFGS([reference], lr=1.0, max_iter=1, history_size=5)

    def closure():
        torch_opt.zero_grad()
        value = f(reference)
        value.backward()
        return value

    ours, opt = x0.clone(), LBFGS(history=5)
    for _ in range(25):
        torch_opt.step(closure)
        loss, grad = evaluate(ours)
        opt.step(ours, loss, grad)
        assert torch.allclose(ours, reference.detach(), rtol=1e-9, atol=1e-9)


def test_backtracking_never_increases_the_objective():
    x0, f, evaluate = problem(1)
    x, opt = x0.clone(), LBFGS()
    loss, grad = evaluate(x)
    for _ in range(15):
        new_loss, grad = opt.step(x, loss, grad, evaluate)
        assert new_loss <= loss
        loss = new_loss
    assert loss < 0.5 * float(f(x0))


def test_adam_takes_torchs_steps():
    x0, f, evaluate = problem(2)
    reference = x0.clone().requires_grad_(True)
    torch_opt = torch.optim.Adam([reference], lr=0.05)
    ours, opt = x0.clone(), Adam(0.05)
    for _ in range(20):
        torch_opt.zero_grad()
        f(reference).backward()
        torch_opt.step()
        opt.step(ours, evaluate(ours)[1])
        assert torch.allclose(ours, reference.detach(), rtol=1e-9, atol=1e-9)
