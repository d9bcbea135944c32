"""The hand-written BatchNorm training pass (dqn.core.batchnorm) against torch.nn: each seed's
network built from torch.nn.Linear and torch.nn.BatchNorm1d (test_networks.RefNet) in training
mode, gradients by autograd, in float64 so the tolerances can be tight."""

from __future__ import annotations

import pytest
import torch
from test_networks import ACTIVATIONS, DUELING, batched_setup, make_spec, references
from torch import nn

from dqn.core.batchnorm import bn_backward, bn_forward_train, bn_network_backward, bn_train
from dqn.core.networks import q_values, unflatten

pytestmark = pytest.mark.usefixtures("single_thread_torch")


def test_one_batchnorm_matches_batchnorm1d_and_autograd() -> None:
    g = torch.Generator().manual_seed(0)
    S, N, F = 3, 7, 4
    x = torch.randn(S, N, F, generator=g, dtype=torch.float64) * 3 + 1
    w = torch.rand(S, F, generator=g, dtype=torch.float64) + 0.5
    b = torch.randn(S, F, generator=g, dtype=torch.float64)
    dy = torch.randn(S, N, F, generator=g, dtype=torch.float64)
    mean, var = torch.zeros(S, F, dtype=torch.float64), torch.ones(S, F, dtype=torch.float64)
    y, saved, new_mean, new_var = bn_train(x, w, b, mean, var)
    dx, dw, db = bn_backward(dy, saved, w)
    for s in range(S):
        bn = nn.BatchNorm1d(F).double()
        with torch.no_grad():
            bn.weight.copy_(w[s])
            bn.bias.copy_(b[s])
        xs = x[s].clone().requires_grad_()
        ys = bn(xs)
        (ys * dy[s]).sum().backward()
        torch.testing.assert_close(y[s], ys)
        torch.testing.assert_close(dx[s], xs.grad)
        torch.testing.assert_close(dw[s], bn.weight.grad)
        torch.testing.assert_close(db[s], bn.bias.grad)
        torch.testing.assert_close(new_mean[s], bn.running_mean)
        torch.testing.assert_close(new_var[s], bn.running_var)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dueling", DUELING)
def test_network_gradients_match_torch_nn(dueling: str | None, activation: str) -> None:
    spec = make_spec(True, dueling, activation)
    flat, stats, x, w = batched_setup(spec)
    tape: list = []
    p = unflatten(spec, flat)
    q, new_stats = bn_forward_train(spec, p, stats, x, tape)
    grad = torch.empty_like(flat)
    bn_network_backward(spec, p, tape, w, grad)
    assert not tape  # every taped piece was used
    for s, net in enumerate(references(spec, flat, stats, dueling)):
        net.train(True)
        q_ref = net(x[s])
        (q_ref * w[s]).sum().backward()
        torch.testing.assert_close(q[s], q_ref)
        torch.testing.assert_close(grad[s], net.grad_row())
        torch.testing.assert_close(new_stats[s], net.stats_row())


@pytest.mark.parametrize("dueling", DUELING)
def test_fused_eval_mode_matches_batchnorm1d(dueling: str | None) -> None:
    """Acting and targets with batchnorm_backward = "manual": BatchNorm in eval mode as one
    affine pass, against torch.nn in eval mode (running statistics)."""
    spec = make_spec(True, dueling, "leaky_relu")
    flat, stats, x, _ = batched_setup(spec)
    q, same_stats = q_values(spec, flat, stats, x, fused=True)
    assert torch.equal(same_stats, stats)
    for s, net in enumerate(references(spec, flat, stats, dueling)):
        net.train(False)
        torch.testing.assert_close(q[s], net(x[s]))


def test_an_agent_update_matches_the_autograd_path() -> None:
    """One Agent.update with batchnorm_backward = "manual" takes the autograd path's gradient
    and running statistics (float32: to rounding), and leaves a masked seed as it was. (The
    weights after Adam's first step are not compared: it moves each weight by about lr times
    the sign of its gradient, which rounding can flip where a gradient is near 0.)"""
    from dqn.base.config import Config
    from dqn.core.agent import Agent

    S, B, device = 3, 16, torch.device("cpu")
    g = torch.Generator().manual_seed(5)
    batch = {"obs": torch.randn(S, B, 4, generator=g),
             "next_obs": torch.randn(S, B, 4, generator=g),
             "action": torch.randint(0, 2, (S, B), generator=g), "reward": torch.ones(S, B),
             "terminated": torch.rand(S, B, generator=g) < 0.2,
             "truncated": torch.zeros(S, B, dtype=torch.bool)}
    mask = torch.tensor([True, False, True])
    agents = [Agent(Config(batchnorm=True, dueling=False, activation="leaky_relu",
                           loss="huber", batchnorm_backward=kind), 4, 2, [1, 2, 3], device)
              for kind in ("autograd", "manual")]
    before = agents[1].params.clone(), agents[1].stats.clone()
    for agent in agents:
        agent.update(batch, mask)
    torch.testing.assert_close(agents[1].grad, agents[0].grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(agents[1].stats, agents[0].stats)
    assert torch.equal(agents[1].params[1], before[0][1])  # the masked seed kept its weights
    assert torch.equal(agents[1].stats[1], before[1][1])
    assert not torch.equal(agents[1].params[0], before[0][0])
