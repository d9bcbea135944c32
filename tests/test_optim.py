"""BatchedAdam and per-seed gradient clipping against torch.optim / torch.nn.utils, seed by seed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dqn.core.optim import BatchedAdam, clip_grad_norm

pytestmark = pytest.mark.usefixtures("single_thread_torch")

S, P = 3, 7


def _draws(steps: int, seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    init = torch.randn(S, P, generator=g)
    grads = [torch.randn(S, P, generator=g) * (1 + t) for t in range(steps)]
    for grad in grads:
        grad[2] *= 1e-7  # tiny gradients: Adam's eps (1e-8) matters for this seed
    return init, grads


def _reference(kind: str, row: torch.Tensor, lr: float):
    p = nn.Parameter(row.clone())
    opt_cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return p, opt_cls([p], lr=lr, foreach=False)  # torch defaults: betas, eps, AdamW decay 0.01


def _run(kind: str, masks: list[list[bool]], lr: float = 0.1):
    init, grads = _draws(len(masks))
    params = init.clone().requires_grad_()
    opt = BatchedAdam(params, lr, adamw=kind == "adamw")
    refs = [_reference(kind, init[s], lr) for s in range(S)]
    for t, mask in enumerate(masks):
        opt.step(grads[t], torch.tensor(mask))
        for s, (p, ref_opt) in enumerate(refs):
            if mask[s]:
                p.grad = grads[t][s].clone()
                ref_opt.step()
            torch.testing.assert_close(params[s].detach(), p.detach())
    return params, opt, refs


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_matches_torch_adam_per_seed_over_several_steps(kind):
    params, opt, refs = _run(kind, [[True] * S] * 6)
    for s, (p, ref_opt) in enumerate(refs):
        state = ref_opt.state[p]
        torch.testing.assert_close(opt.exp_avg[s], state["exp_avg"])
        torch.testing.assert_close(opt.exp_avg_sq[s], state["exp_avg_sq"])
        assert opt.steps[s].item() == state["step"].item() == 6


def test_adamw_differs_from_adam():
    """The weight decay is really applied (the comparison above would not tell them apart if
    torch's AdamW reference were accidentally Adam too)."""
    adam, _, _ = _run("adam", [[True] * S] * 3)
    adamw, _, _ = _run("adamw", [[True] * S] * 3)
    assert not torch.allclose(adam, adamw, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_each_seed_has_its_own_step_count(kind):
    """Masked steps skip the seed entirely: bias corrections follow each seed's own count."""
    masks = [[True, False, True], [True, True, False], [False, True, False], [True, True, True],
             [False, False, True]]
    _, opt, refs = _run(kind, masks)
    for s, (p, ref_opt) in enumerate(refs):
        state = ref_opt.state[p]
        assert opt.steps[s].item() == state["step"].item() == sum(m[s] for m in masks)
        torch.testing.assert_close(opt.exp_avg[s], state["exp_avg"])
        torch.testing.assert_close(opt.exp_avg_sq[s], state["exp_avg_sq"])


@pytest.mark.parametrize("zero_grad", [True, False])
@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_masked_seed_is_bit_identical(kind, zero_grad):
    init, grads = _draws(4)
    params = init.clone().requires_grad_()
    opt = BatchedAdam(params, 0.1, adamw=kind == "adamw")
    opt.step(grads[0], torch.ones(S, dtype=torch.bool))  # non-trivial state everywhere
    before = [t.detach().clone() for t in (params, opt.exp_avg, opt.exp_avg_sq, opt.steps)]
    mask = torch.tensor([True, False, True])
    for g in grads[1:]:
        g = g.clone()
        if zero_grad:
            g[1] = 0.0  # what Agent.update hands a masked seed; a finite one must not matter
        opt.step(g, mask)
    after = (params.detach(), opt.exp_avg, opt.exp_avg_sq, opt.steps)
    for b, a in zip(before, after, strict=True):
        assert torch.equal(a[1], b[1])
        assert not torch.equal(a[0], b[0]) and not torch.equal(a[2], b[2])


def test_never_stepped_seed_stays_put():
    """A seed masked from the start (step count 0) must not divide 0 by 0."""
    init, grads = _draws(3)
    params = init.clone().requires_grad_()
    opt = BatchedAdam(params, 0.1)
    for g in grads:
        g = g.clone()
        g[2] = 0.0
        opt.step(g, torch.tensor([True, True, False]))
    assert torch.equal(params[2].detach(), init[2])
    assert torch.isfinite(params).all()
    assert opt.steps[:, 0].tolist() == [3.0, 3.0, 0.0]


# gradient clipping --------------------------------------------------------------------------

def _grads() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    grad = torch.randn(4, 10, generator=g)
    grad[0] *= 0.01  # well below any max_norm used here
    grad[1] *= 3.0
    grad[3] = 0.0  # a zero gradient stays zero
    return grad


@pytest.mark.parametrize("max_norm", [0.05, 1.0, 2.5, 10.0])
def test_clipping_matches_clip_grad_norm_per_seed(max_norm):
    grad = _grads()
    clipped, norms = clip_grad_norm(grad, max_norm)
    for s in range(grad.shape[0]):
        # one seed's network is several tensors: clip them together, as torch would
        parts = [nn.Parameter(torch.zeros(n)) for n in (6, 3, 1)]
        for p, g in zip(parts, grad[s].split([6, 3, 1]), strict=True):
            p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(parts, max_norm)
        torch.testing.assert_close(norms[s], total)
        torch.testing.assert_close(clipped[s], torch.cat([p.grad for p in parts]))
    assert torch.equal(grad, _grads())  # the input is not modified in place


def test_clipping_scales_only_rows_above_the_norm():
    grad = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    clipped, norms = clip_grad_norm(grad, 1.0)
    torch.testing.assert_close(norms, torch.tensor([5.0, 0.5, 0.0]))
    torch.testing.assert_close(clipped, torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]))


def test_max_norm_zero_disables_clipping():
    grad = _grads()
    clipped, norms = clip_grad_norm(grad, 0.0)
    assert torch.equal(clipped, grad)
    torch.testing.assert_close(norms, torch.linalg.vector_norm(grad, dim=1))


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_device_path_equals_host_path_bit_for_bit(kind):
    """Off the CPU the mask is not read on the host: every row steps and masked rows are put
    back. Both paths must give the same numbers exactly, a never-stepped seed included."""
    init, grads = _draws(5)
    masks = [[True, False, False], [True, True, False], [False, True, False],
             [True, True, True], [False, False, False]]
    states = []
    for host_mask in (True, False):
        params = init.clone()
        opt = BatchedAdam(params, 0.1, adamw=kind == "adamw", host_mask=host_mask)
        for g, m in zip(grads, masks, strict=True):
            opt.step(g, torch.tensor(m))
        states.append((params, opt.exp_avg, opt.exp_avg_sq, opt.steps))
    for host, device in zip(*states, strict=True):
        assert torch.equal(host, device)
