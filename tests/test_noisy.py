"""Noisy networks (dqn.core.noisy, config noisy): the layers against plain torch, the noise's
statistics, gradients into mu and sigma, per-seed independence and the epsilon exclusion."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import dqn.core.train
from dqn.base.config import Config, ConfigError, from_dict
from dqn.core import noisy
from dqn.core.agent import Agent
from dqn.core.networks import NetSpec, q_values

CPU = torch.device("cpu")
SPEC = NetSpec(3, 2, (4,), "relu", False, False, "max", noisy=True)


def agent(**overrides) -> Agent:
    config = from_dict({"total_steps": 100, "learning_starts": 10, "batch_size": 5,
                        "buffer_size": 10, "hidden": [4], "device": "cpu", "dueling": False,
                        "noisy": True, **overrides})
    return Agent(config, 3, 2, [11, 12], CPU)


def layers(params: torch.Tensor) -> dict[str, torch.Tensor]:
    """One seed's mu and sigma of SPEC's two layers, from the documented layout: the plain
    network (fc0.weight (3, 4), fc0.bias, out.weight (4, 2), out.bias), then the sigmas."""
    sizes = {"fc0.weight": (3, 4), "fc0.bias": (4,), "out.weight": (4, 2), "out.bias": (2,)}
    out, pos = {}, 0
    for prefix in ("", "sigma."):
        for name, shape in sizes.items():
            n = math.prod(shape)
            out[prefix + name] = params[pos:pos + n].view(shape)
            pos += n
    assert pos == params.numel()
    return out


def plain_noisy_q(p: dict[str, torch.Tensor], x: torch.Tensor, eps: torch.Tensor | None):
    """The noisy MLP in torch.nn.functional: W = mu + sigma * outer(f(e_in), f(e_out))."""
    def f(e):
        return torch.sign(e) * torch.sqrt(e.abs())

    h, pos = x, 0
    for i, name in enumerate(("fc0", "out")):
        w, b = p[f"{name}.weight"], p[f"{name}.bias"]  # (in, out), (out,)
        if eps is not None:
            n_in, n_out = w.shape
            e_in, e_out = f(eps[pos:pos + n_in]), f(eps[pos + n_in:pos + n_in + n_out])
            pos += n_in + n_out
            w = w + p[f"sigma.{name}.weight"] * torch.outer(e_in, e_out)
            b = b + p[f"sigma.{name}.bias"] * e_out
        h = F.linear(h, w.T, b)
        if i == 0:
            h = F.relu(h)
    return h


def test_initialisation_and_the_mean_network_are_plain_linear_layers():
    a = agent(noisy_sigma0=0.5)
    p = layers(a.params[0])
    assert torch.equal(p["sigma.fc0.weight"], torch.full((3, 4), 0.5 / math.sqrt(3)))
    assert torch.equal(p["sigma.out.bias"], torch.full((2,), 0.5 / math.sqrt(4)))
    # mu is drawn exactly as the plain network's parameters are
    plain = Agent(a.config.replace(noisy=False), 3, 2, [11, 12], CPU)
    assert torch.equal(a.params[:, :plain.params.shape[1]], plain.params)
    x = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(0))
    expected = torch.stack([plain_noisy_q(layers(a.params[s]), x[s], None) for s in range(2)])
    torch.testing.assert_close(a._q(False, x), expected)
    assert torch.equal(a.greedy(x), expected.argmax(-1))  # evaluation: the mean network


def test_noisy_forward_is_the_factorised_layer_of_plain_torch():
    a = agent()
    a.params[:, -22:] += 0.3  # sigmas large enough to matter
    eps = torch.randn(2, noisy.noise_size(a.spec), generator=torch.Generator().manual_seed(1))
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(2))
    expected = torch.stack([plain_noisy_q(layers(a.params[s]), x[s], eps[s]) for s in range(2)])
    torch.testing.assert_close(a._q(False, x, eps), expected)
    assert noisy.noise_size(SPEC) == (3 + 4) + (4 + 2)


def test_noise_has_the_factorised_statistics():
    """A weight's noise f(e_i) f(e_j) has mean 0 and variance (E f(e)^2)^2 = (E|e|)^2 = 2 / pi,
    a bias's f(e_j) variance E|e| = sqrt(2 / pi); checked over 20,000 draws."""
    eps = torch.randn(20_000, noisy.noise_size(SPEC), generator=torch.Generator().manual_seed(3))
    m = noisy.noise_matrix(noisy.base(SPEC), eps)  # (20000, P_lin)
    weight, bias = m[:, :12], m[:, 12:16]  # fc0's
    assert abs(weight.mean()) < 0.02 and abs(bias.mean()) < 0.02
    assert weight.var().item() == pytest.approx(2 / math.pi, rel=0.03)
    assert bias.var().item() == pytest.approx(math.sqrt(2 / math.pi), rel=0.03)
    # factorised: one row of W shares f(e_in_i), one column f(e_out_j)
    w = m[0, :12].view(3, 4)
    assert torch.linalg.matrix_rank(w) == 1


def test_gradients_reach_mu_and_sigma_as_in_plain_autograd():
    a = agent(lr=0.0, gamma=0.9)
    a.params[:, -22:] += 0.2
    g = torch.Generator().manual_seed(4)
    batch = {"obs": torch.randn(2, 5, 3, generator=g),
             "action": torch.randint(2, (2, 5), generator=g),
             "reward": torch.rand(2, 5, generator=g),
             "next_obs": torch.randn(2, 5, 3, generator=g),
             "terminated": torch.zeros(2, 5, dtype=torch.bool),
             "truncated": torch.zeros(2, 5, dtype=torch.bool)}
    noise = torch.randn(2, 2, noisy.noise_size(a.spec), generator=g)
    grads = []
    for s in range(2):
        leaf = a.params[s].clone().requires_grad_()
        with torch.no_grad():
            y = batch["reward"][s] + 0.9 * plain_noisy_q(
                layers(a.target_params[s]), batch["next_obs"][s], noise[s, 1]).max(-1).values
        q = plain_noisy_q(layers(leaf), batch["obs"][s], noise[s, 0])
        loss = ((q.gather(-1, batch["action"][s][:, None]).squeeze(-1) - y) ** 2).mean()
        grads.append(torch.autograd.grad(loss, leaf)[0])
    a.update(batch, torch.ones(2, dtype=torch.bool), noise)
    torch.testing.assert_close(a.grad, torch.stack(grads))
    assert a.grad[:, -22:].abs().sum() > 0  # sigma learns


def test_noisy_training_is_per_seed_and_epsilon_free():
    c = Config(noisy=True, total_steps=300, learning_starts=100, eval_every=150,
               eval_episodes=1, log_every=100, device="cpu")
    both = dqn.core.train.train(c, [0, 1])
    alone = dqn.core.train.train(c, [1])
    assert both.evals[both.evals["seed"] == 1].reset_index(drop=True).equals(alone.evals)
    assert (both.diagnostics["epsilon"] == 0).all()
    assert both.weights.params.shape[1] == noisy.base(
        NetSpec.from_config(c, 4, 2)).n_params + noisy.linear_size(NetSpec.from_config(c, 4, 2))


def test_saved_noisy_weights_act_as_the_mean_network():
    c = Config(noisy=True, total_steps=300, learning_starts=100, eval_every=150,
               eval_episodes=1, log_every=100, device="cpu")
    w = dqn.core.train.train(c, [0]).weights
    spec = NetSpec(**(w.spec | {"hidden": tuple(w.spec["hidden"])}))
    params = torch.as_tensor(w.params)
    x = torch.randn(1, 9, 4, generator=torch.Generator().manual_seed(5))
    mean = q_values(noisy.base(spec), params[:, :noisy.base(spec).n_params],
                    torch.as_tensor(w.stats), x)[0]
    torch.testing.assert_close(q_values(spec, params, torch.as_tensor(w.stats), x)[0], mean)


@pytest.mark.parametrize("key, value", [("epsilon_start", 0.5), ("epsilon_end", 0.0),
                                        ("epsilon_schedule", "linear")])
def test_noisy_with_an_epsilon_setting_is_an_error(key, value):
    with pytest.raises(ConfigError, match=f"key '{key}'.*cannot be set with noisy = true"):
        from_dict({"noisy": True, key: value})
    from_dict({key: value})  # fine without noisy


def test_noisy_sigma0_must_be_positive():
    with pytest.raises(ConfigError, match="key 'noisy_sigma0'"):
        from_dict({"noisy": True, "noisy_sigma0": 0.0})
