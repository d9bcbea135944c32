"""Prioritized replay (dqn.core.priority, config prioritized_replay): sampling frequencies, weights
and priorities by hand, per seed; the weighted loss and its gradient against plain torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dqn.core.train
from dqn.base.config import Config, ConfigError, from_dict
from dqn.core.agent import Agent
from dqn.core.priority import importance_weights, proportional_sample
from dqn.core.replay import Replay
from dqn.core.schedules import priority_beta

CPU = torch.device("cpu")


def filled(priorities: list[list[float]], alpha: float = 1.0) -> Replay:
    """A replay of len(priorities) seeds holding len(row) transitions each (reward = slot),
    their priorities set to the rows."""
    S, n = len(priorities), len(priorities[0])
    r = Replay(S, 8, 1, CPU, priority_alpha=alpha)
    for k in range(n):
        r.add(torch.zeros(S, 1), torch.zeros(S, dtype=torch.long), torch.full((S,), float(k)),
              torch.zeros(S, 1), torch.zeros(S, dtype=torch.bool),
              torch.zeros(S, dtype=torch.bool), torch.ones(S, dtype=torch.bool))
    r.priority[:, :n] = torch.tensor(priorities)
    return r


def test_sampling_frequencies_follow_the_priorities():
    """200,000 draws of a seed with priorities 1, 2, 3, 4 (and an unfilled slot of priority
    100): each slot comes up p_i / 10 of the time, within 4 standard errors."""
    r = filled([[1.0, 2.0, 3.0, 4.0]])
    r.priority[0, 4] = 100.0  # beyond count: never drawn
    u = torch.rand(1, 200_000, generator=torch.Generator().manual_seed(0))
    slots = r.sample(u)["index"][0].numpy()
    freq = np.bincount(slots, minlength=5) / slots.size
    expected = np.array([0.1, 0.2, 0.3, 0.4, 0.0])
    assert np.all(np.abs(freq - expected) <= 4 * np.sqrt(expected * (1 - expected) / slots.size))


def test_hand_picked_uniforms_land_in_the_right_slots():
    # cumulative sums 1, 3, 6, 10: u * 10 in [0, 1) -> 0, [1, 3) -> 1, [3, 6) -> 2, [6, 10) -> 3
    slots, prob, lowest = proportional_sample(
        torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([4]),
        torch.tensor([[0.0, 0.05, 0.1, 0.29, 0.3, 0.59, 0.6, 0.99]]))
    assert slots.tolist() == [[0, 0, 1, 1, 2, 2, 3, 3]]
    assert prob[0].tolist() == pytest.approx([0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4])
    assert lowest[0].tolist() == pytest.approx([0.1])


def test_importance_weights_by_hand():
    """w = (N P(i))^-beta / max_j (N P(j))^-beta with P = 0.1 .. 0.4, beta = 0.5: the rarest
    slot weighs 1, the others (P(i) / 0.1)^-0.5."""
    prob = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    w = importance_weights(prob, prob.min(dim=1, keepdim=True).values, beta=0.5)
    N = 4
    raw = (N * prob) ** -0.5
    assert w[0].tolist() == pytest.approx((raw / raw.max())[0].tolist())
    assert w[0].tolist() == pytest.approx([1.0, 2 ** -0.5, 3 ** -0.5, 0.5])


def test_beta_anneals_linearly_to_one():
    c = Config(priority_beta_start=0.4, total_steps=1000)
    assert [priority_beta(c, t) for t in (0, 500, 1000, 2000)] == pytest.approx(
        [0.4, 0.7, 1.0, 1.0])


def test_priorities_change_where_and_only_where_sampled():
    r = filled([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]], alpha=0.5)
    index = torch.tensor([[1, 3, 1], [0, 0, 2]])
    td = torch.tensor([[3.0, 8.0, 3.0], [1.0, 1.0, 15.0]])
    r.update_priorities(index, td, torch.tensor([True, False]))
    eps = r.eps
    assert r.priority[0, :4].tolist() == pytest.approx([1.0, (3 + eps) ** 0.5, 1.0,
                                                        (8 + eps) ** 0.5])
    assert r.priority[1, :4].tolist() == [1.0, 1.0, 1.0, 1.0]  # masked seed: untouched
    # a new transition gets the largest priority its seed has held
    assert r.max_priority.tolist() == pytest.approx([(8 + eps) ** 0.5, 1.0])
    r.add(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), torch.zeros(2),
          torch.zeros(2, 1), torch.zeros(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool),
          torch.ones(2, dtype=torch.bool))
    assert r.priority[:, 4].tolist() == pytest.approx([(8 + eps) ** 0.5, 1.0])
    r.clear(torch.tensor([True, False]))
    assert r.max_priority.tolist() == pytest.approx([1.0, 1.0])


def test_a_seeds_samples_do_not_depend_on_the_other_seeds_priorities():
    u = torch.rand(2, 64, generator=torch.Generator().manual_seed(1))
    a = filled([[1.0, 5.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]]).sample(u)
    b = filled([[1.0, 5.0, 2.0, 1.0], [9.0, 0.1, 4.0, 2.0]]).sample(u)
    assert torch.equal(a["index"][0], b["index"][0])
    assert torch.equal(a["weight"][0], b["weight"][0])
    assert not torch.equal(a["index"][1], b["index"][1])


def test_the_loss_is_importance_weighted_with_the_gradient_of_plain_torch():
    """mean_i w_i (q_i - y_i)^2 per seed and its gradient, against autograd through the plain
    MLP written here (weights stored (in, out))."""
    config = from_dict({"total_steps": 100, "learning_starts": 10, "batch_size": 4,
                        "buffer_size": 10, "hidden": [3], "device": "cpu", "dueling": False,
                        "prioritized_replay": True, "gamma": 0.9})
    agent = Agent(config, 2, 2, [3], CPU)
    g = torch.Generator().manual_seed(0)
    batch = {"obs": torch.randn(1, 4, 2, generator=g), "action": torch.tensor([[0, 1, 1, 0]]),
             "reward": torch.tensor([[1.0, 0.0, 2.0, 1.0]]),
             "next_obs": torch.randn(1, 4, 2, generator=g),
             "terminated": torch.zeros(1, 4, dtype=torch.bool),
             "truncated": torch.zeros(1, 4, dtype=torch.bool),
             "weight": torch.tensor([[1.0, 0.5, 0.25, 0.125]])}
    p = agent.params[0].clone().requires_grad_()

    def q(x):
        return torch.relu(x @ p[:6].view(2, 3) + p[6:9]) @ p[9:15].view(3, 2) + p[15:17]

    with torch.no_grad():
        y = batch["reward"][0] + 0.9 * q(batch["next_obs"][0]).max(dim=-1).values
    q_taken = q(batch["obs"][0]).gather(-1, batch["action"][0][:, None]).squeeze(-1)
    loss = (batch["weight"][0] * (q_taken - y) ** 2).mean()
    loss.backward()
    out = agent.update(batch, torch.ones(1, dtype=torch.bool))
    torch.testing.assert_close(out.loss, loss.detach()[None])
    torch.testing.assert_close(agent.grad[0], p.grad)
    torch.testing.assert_close(out.td_error[0], (q_taken - y).abs().detach())


def test_prioritized_training_runs_per_seed_and_trains_differently():
    """A short run: seeds are independent (alone = batched) and priorities change the run."""
    c = Config(total_steps=400, learning_starts=100, eval_every=200, eval_episodes=1,
               log_every=100, device="cpu", prioritized_replay=True)
    both = dqn.core.train.train(c, [0, 1]).diagnostics
    alone = dqn.core.train.train(c, [1]).diagnostics
    assert both[both["seed"] == 1].reset_index(drop=True).equals(alone)
    plain = dqn.core.train.train(c.replace(prioritized_replay=False), [1]).diagnostics
    assert not plain["loss"].equals(alone["loss"])


@pytest.mark.parametrize("key, value", [("priority_alpha", 1.5), ("priority_beta_start", -0.1),
                                        ("priority_eps", 0.0)])
def test_bad_priority_settings_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        from_dict({key: value})
