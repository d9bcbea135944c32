"""C51 (distributional = true): the projection against hand computations, the support's
default against its formula, and the agent's head, target, loss, gradient and priorities
against plain torch.nn code written here."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dqn.base.config import ConfigError, from_dict
from dqn.core import c51
from dqn.core.agent import Agent

pytestmark = pytest.mark.usefixtures("single_thread_torch")

Z5 = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])  # K = 5 atoms, dz = 1
ONE_HOT_1 = torch.tensor([[[0.0, 1.0, 0.0, 0.0, 0.0]]])  # (1, 1, 5): all mass on z = 1


def _project(probs, reward, bootstrap=1.0, gamma=1.0, scale=1.0, z=Z5):
    as_t = lambda v: torch.full((1, 1), float(v))  # noqa: E731
    return c51.project(probs, as_t(reward), as_t(bootstrap), gamma, scale, z)[0, 0]


def test_support_and_mean_by_hand():
    assert torch.equal(c51.support(5, -2.0, 2.0), torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.0 + 1e-30]]))  # (1, 5)
    assert c51.mean(logits, Z5).item() == pytest.approx(0.2 + 0.6 + 1.2)


@pytest.mark.parametrize("reward, expected", [
    (0.5, [0, 0.5, 0.5, 0, 0]),      # 1 + 0.5 = 1.5: halfway between atoms 1 and 2
    (1.0, [0, 0, 1, 0, 0]),          # on the grid: all mass to atom 2
    (2.75, [0, 0, 0, 0.25, 0.75]),   # 3.75: a quarter to 3, three quarters to 4
    (10.0, [0, 0, 0, 0, 1]),         # clipped at v_max
    (-10.0, [1, 0, 0, 0, 0]),        # clipped at v_min
])
def test_projection_of_one_atom_by_hand(reward, expected):
    assert _project(ONE_HOT_1, reward).tolist() == pytest.approx(expected)


def test_a_stop_puts_all_mass_around_the_scaled_reward_whatever_the_next_distribution():
    spread = torch.tensor([[[0.1, 0.2, 0.3, 0.2, 0.2]]])
    # c r = 0.5 * 4.5 = 2.25: 0.75 to atom 2, 0.25 to atom 3
    for probs in (ONE_HOT_1, spread):
        got = _project(probs, 4.5, bootstrap=0.0, gamma=0.9, scale=0.5)
        assert got.tolist() == pytest.approx([0, 0, 0.75, 0.25, 0])


def test_projection_with_gamma_and_reward_scale_by_hand():
    # Tz_j = 0.5 * 1 + 0.5 z_j = 0.5, 1, 1.5, 2, 2.5 for p = (0.1, 0.2, 0.3, 0.2, 0.2)
    probs = torch.tensor([[[0.1, 0.2, 0.3, 0.2, 0.2]]])
    got = _project(probs, 1.0, gamma=0.5, scale=0.5)
    # atom 0: 0.05; atom 1: 0.05 + 0.2 + 0.15 = 0.4; atom 2: 0.15 + 0.2 + 0.1 = 0.45;
    # atom 3: 0.1
    assert got.tolist() == pytest.approx([0.05, 0.4, 0.45, 0.1, 0.0])


def test_projection_takes_each_transitions_own_discount_and_matches_the_triangle_formula():
    g = torch.Generator().manual_seed(0)
    S, B, K = 3, 7, 11
    z = c51.support(K, -3.0, 5.0)
    probs = torch.softmax(torch.randn(S, B, K, generator=g), dim=-1)
    reward = torch.randn(S, B, generator=g) * 3
    bootstrap = (torch.rand(S, B, generator=g) < 0.7).float()
    gamma = 0.9 ** torch.randint(1, 4, (S, B), generator=g).float()  # n-step: gamma^m
    got = c51.project(probs, reward, bootstrap, gamma, 0.7, z)
    # m_i = sum_j p_j max(0, 1 - |Tz_j - z_i| / dz), written out independently
    dz = 8.0 / (K - 1)
    tz = (0.7 * reward[..., None] + (gamma * bootstrap)[..., None] * z).clamp(-3.0, 5.0)
    weight = (1 - (tz[..., None, :] - z[:, None]).abs() / dz).clamp(min=0)  # (S, B, K_i, K_j)
    expected = (weight * probs[..., None, :]).sum(-1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.sum(-1), torch.ones(S, B))


def _config(**kw):
    return from_dict({"distributional": True, **kw})


def test_default_support_is_the_discounted_return_bound():
    cartpole = c51.value_range(_config(gamma=0.995))
    assert cartpole == pytest.approx((0.0, (1 - 0.995 ** 500) / 0.005))
    assert c51.value_range(_config(gamma=1.0)) == (0.0, 500.0)
    acrobot = c51.value_range(_config(env_id="Acrobot-v1", gamma=0.99, reward_scale=0.01))
    assert acrobot == pytest.approx((-0.01 * (1 - 0.99 ** 500) / 0.01, 0.0))
    # LunarLander: only its episode-return range is known, used undiscounted
    assert c51.value_range(_config(env_id="LunarLander-v3")) == (-500.0, 300.0)
    assert c51.value_range(_config(v_min=-1.0, v_max=7.0)) == (-1.0, 7.0)


@pytest.mark.parametrize("keys, blamed", [
    ({"loss": "huber"}, "loss"),
    ({"batchnorm": True, "batchnorm_backward": "manual"}, "batchnorm_backward"),
    ({"n_atoms": 1}, "n_atoms"),
    ({"v_min": 3.0, "v_max": 1.0}, "v_max"),
])
def test_bad_c51_settings_are_errors_naming_the_key(keys, blamed):
    with pytest.raises(ConfigError, match=f"key '{blamed}'"):
        _config(**keys)


# -- the agent against plain torch.nn ------------------------------------------------------
S, B, OBS, A, K, H = 2, 9, 3, 2, 5, 6
V_MIN, V_MAX = -2.0, 2.0


def _agent(**kw) -> Agent:
    config = _config(hidden=[H], n_atoms=K, v_min=V_MIN, v_max=V_MAX, gamma=0.9,
                     reward_scale=0.5, lr=0.01, device="cpu", **kw)
    agent = Agent(config, OBS, A, [3, 8], torch.device("cpu"))
    with torch.no_grad():  # a target unlike the online network, so each plays its part
        agent.target_params.add_(0.3 * torch.randn(agent.target_params.shape,
                                                   generator=torch.Generator().manual_seed(1)))
    return agent


class TorchC51(nn.Module):
    """One seed's C51 network in torch.nn, built from the agent's flat parameters."""

    def __init__(self, views: dict[str, torch.Tensor], s: int, dueling: str | None) -> None:
        super().__init__()
        self.dueling = dueling  # None, "mean" or "max": each atom's advantages centred
        names = ("fc0", "value", "advantage") if dueling else ("fc0", "out")
        self.layers = nn.ModuleDict()
        for name in names:
            w = views[f"{name}.weight"][s]  # (in, out)
            layer = nn.Linear(*w.shape)
            layer.weight.data.copy_(w.T)
            layer.bias.data.copy_(views[f"{name}.bias"][s])
            self.layers[name] = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, A, K) logits
        h = torch.relu(self.layers["fc0"](x))
        if not self.dueling:
            return self.layers["out"](h).view(-1, A, K)
        value = self.layers["value"](h).view(-1, 1, K)
        adv = self.layers["advantage"](h).view(-1, A, K)
        centre = (adv.mean(dim=1, keepdim=True) if self.dueling == "mean"
                  else adv.max(dim=1, keepdim=True).values)
        return value + adv - centre


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(S, B, OBS, generator=g),
            "action": torch.randint(A, (S, B), generator=g),
            "reward": 2 * torch.randn(S, B, generator=g),
            "next_obs": torch.randn(S, B, OBS, generator=g),
            "terminated": torch.rand(S, B, generator=g) < 0.3,
            "truncated": torch.rand(S, B, generator=g) < 0.3,
            "weight": torch.rand(S, B, generator=g) + 0.5}


@pytest.mark.parametrize("dueling", [None, "mean", "max"])
@pytest.mark.parametrize("double_dqn", [False, True])
@pytest.mark.parametrize("terminal_masking, truncation", [(True, "bootstrap"),
                                                          (False, "terminal")])
def test_update_matches_plain_torch(dueling, double_dqn, terminal_masking, truncation):
    agent = _agent(dueling=dueling is not None, dueling_aggregation=dueling or "mean",
                   double_dqn=double_dqn,
                   terminal_masking=terminal_masking, truncation=truncation)
    batch = _batch()
    online = [TorchC51(agent._online, s, dueling) for s in range(S)]
    target = [TorchC51(agent._target, s, dueling) for s in range(S)]
    z = torch.linspace(V_MIN, V_MAX, K)
    losses, grads, cross_entropies = [], [], []
    for s in range(S):
        with torch.no_grad():
            next_logits = target[s](batch["next_obs"][s])  # (B, A, K)
            pick = online[s] if double_dqn else target[s]
            best = (torch.softmax(pick(batch["next_obs"][s]), -1) * z).sum(-1).argmax(-1)
            p = torch.softmax(next_logits[torch.arange(B), best], -1)  # (B, K)
            stop = torch.zeros(B, dtype=torch.bool)
            if terminal_masking:
                stop |= batch["terminated"][s]
            if truncation == "terminal":
                stop |= batch["truncated"][s]
            tz = (0.5 * batch["reward"][s, :, None]
                  + 0.9 * (~stop).float()[:, None] * z).clamp(V_MIN, V_MAX)
            m = ((1 - (tz[:, None, :] - z[None, :, None]).abs() / 1.0).clamp(min=0)
                 * p[:, None, :]).sum(-1)  # (B, K) with dz = 1
        logits = online[s](batch["obs"][s])[torch.arange(B), batch["action"][s]]  # (B, K)
        ce = -(m * torch.log_softmax(logits, -1)).sum(-1)  # (B,)
        loss = (batch["weight"][s] * ce).mean()
        loss.backward()
        losses.append(loss.item())
        cross_entropies.append(ce.detach())
        grads.append({n: p.grad for n, p in online[s].layers.named_parameters()})
    stats = agent.update(batch, torch.ones(S, dtype=torch.bool))
    torch.testing.assert_close(stats.loss, torch.tensor(losses), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stats.td_error, torch.stack(cross_entropies), rtol=1e-5,
                               atol=1e-6)  # prioritized replay's new priorities
    for name, (start, end, _) in agent.spec.offsets.items():
        layer, kind = name.rsplit(".", 1)
        for s in range(S):
            g = grads[s][f"{layer}.{kind}"]
            expected = (g.T if kind == "weight" else g).reshape(-1)
            torch.testing.assert_close(agent.grad[s, start:end], expected, rtol=1e-5,
                                       atol=1e-6)


@pytest.mark.parametrize("dueling", [None, "mean", "max"])
def test_acting_is_greedy_in_the_distributions_mean(dueling):
    agent = _agent(dueling=dueling is not None, dueling_aggregation=dueling or "mean")
    obs = torch.randn(S, 4, OBS, generator=torch.Generator().manual_seed(2))
    for s in range(S):
        net = TorchC51(agent._online, s, dueling)
        q = (torch.softmax(net(obs[s]), -1) * torch.linspace(V_MIN, V_MAX, K)).sum(-1)
        assert torch.equal(agent.greedy(obs)[s], q.argmax(-1))
        torch.testing.assert_close(agent._q(False, obs)[s], q.detach(), rtol=1e-5, atol=1e-6)


def test_a_masked_seed_is_left_alone():
    agent = _agent(prioritized_replay=True)
    before = agent.params.clone()
    agent.update(_batch(), torch.tensor([True, False]))
    assert not torch.equal(agent.params[0], before[0])
    assert torch.equal(agent.params[1], before[1])
    assert math.isfinite(float(agent.params.sum()))
