"""The TD target for every knob, against values worked out by hand, and the target network kinds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dqn.base.config import from_dict
from dqn.core.agent import Agent
from dqn.core.networks import q_values
from dqn.core.td import bootstrap_mask, polyak, td_loss, td_loss_grad, td_target

pytestmark = pytest.mark.usefixtures("single_thread_torch")

CPU = torch.device("cpu")
T, F_ = True, False  # F is torch.nn.functional

# bootstrap_mask ------------------------------------------------------------------------------

# inputs: (terminated, truncated) = (F, F), (T, F), (F, T), (T, T)
TERMINATED = torch.tensor([[F_, T, F_, T]])
TRUNCATED = torch.tensor([[F_, F_, T, T]])


@pytest.mark.parametrize(
    ("terminal_masking", "truncation", "expected"),
    [
        (True, "bootstrap", [1.0, 0.0, 1.0, 0.0]),  # stop at terminals only (correct)
        (True, "terminal", [1.0, 0.0, 0.0, 0.0]),  # truncations stop too
        (False, "bootstrap", [1.0, 1.0, 1.0, 1.0]),  # never stop
        (False, "terminal", [1.0, 1.0, 0.0, 0.0]),  # stop at truncations only
    ],
)
def test_bootstrap_mask_truth_table(terminal_masking, truncation, expected):
    m = bootstrap_mask(TERMINATED, TRUNCATED, terminal_masking, truncation)
    assert m.dtype == torch.float32
    assert torch.equal(m, torch.tensor([expected]))


# td_target ----------------------------------------------------------------------------------

REWARD = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])  # (S=2, B=2)
BOOT = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
NEXT_Q_TARGET = torch.tensor([[[1.0, 3.0], [5.0, 2.0]],
                              [[-2.0, -4.0], [0.5, 1.5]]])  # (S, B, A=2)
# the online net prefers the other action everywhere, so double DQN picks different values
NEXT_Q_ONLINE = torch.tensor([[[4.0, 0.0], [0.0, 1.0]],
                              [[0.0, 9.0], [7.0, 6.0]]])


@pytest.mark.parametrize("reward_scale", [1.0, 0.01])
@pytest.mark.parametrize("gamma", [0.9, 0.99, 1.0])
def test_td_target_dqn(gamma, reward_scale):
    y = td_target(REWARD, BOOT, NEXT_Q_TARGET, None, gamma, reward_scale)
    # max over the target's own values: [[3, 5], [-2, 1.5]]; item (0, 1) does not bootstrap
    expected = torch.tensor([
        [reward_scale * 1.0 + gamma * 3.0, reward_scale * 2.0],
        [reward_scale * -1.0 + gamma * -2.0, reward_scale * 0.5 + gamma * 1.5],
    ])
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("reward_scale", [1.0, 0.01])
@pytest.mark.parametrize("gamma", [0.9, 0.99, 1.0])
def test_td_target_double_dqn(gamma, reward_scale):
    y = td_target(REWARD, BOOT, NEXT_Q_TARGET, NEXT_Q_ONLINE, gamma, reward_scale)
    # online argmax [[0, 1], [1, 0]] -> target values [[1, 2], [-4, 0.5]]
    expected = torch.tensor([
        [reward_scale * 1.0 + gamma * 1.0, reward_scale * 2.0],
        [reward_scale * -1.0 + gamma * -4.0, reward_scale * 0.5 + gamma * 0.5],
    ])
    torch.testing.assert_close(y, expected)


def test_reward_scale_applies_to_the_reward_only():
    y = td_target(torch.tensor([[100.0]]), torch.tensor([[1.0]]), torch.tensor([[[10.0, 20.0]]]),
                  None, 0.5, 0.01)
    torch.testing.assert_close(y, torch.tensor([[1.0 + 10.0]]))


# td_loss ------------------------------------------------------------------------------------

Q_TAKEN = torch.tensor([[0.0, 2.0, 0.5], [1.0, -1.0, 3.0]])
TARGET = torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        # |d| = [0.5, 2, 0] and [1, 1, 3]; huber: d^2/2 below 1, |d| - 1/2 above
        ("huber", [(0.125 + 1.5 + 0.0) / 3, (0.5 + 0.5 + 2.5) / 3]),
        ("mse", [(0.25 + 4.0 + 0.0) / 3, (1.0 + 1.0 + 9.0) / 3]),
    ],
)
def test_td_loss_by_hand(kind, expected):
    torch.testing.assert_close(td_loss(Q_TAKEN, TARGET, kind), torch.tensor(expected))


# target networks inside the Agent -----------------------------------------------------------

S, B, OBS, ACTIONS = 3, 6, 3, 2


def make_agent(**overrides) -> Agent:
    config = from_dict({"total_steps": 100, "learning_starts": 10, "batch_size": B,
                        "buffer_size": 50, "hidden": [6], "device": "cpu", "lr": 0.05,
                        **overrides})
    return Agent(config, OBS, ACTIONS, [20 + s for s in range(S)], CPU)


def random_batch(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randn(S, B, OBS, generator=g),
        "action": torch.randint(ACTIONS, (S, B), generator=g),
        "reward": torch.rand(S, B, generator=g),
        "next_obs": torch.randn(S, B, OBS, generator=g),
        "terminated": torch.zeros(S, B, dtype=torch.bool),
        "truncated": torch.zeros(S, B, dtype=torch.bool),
    }


def self_consistent_batch(agent: Agent, seed: int) -> dict[str, torch.Tensor]:
    """s' = s, reward 0, the action the online net rates best: with gamma 1 the TD error is
    exactly zero when s' is valued by the online net, and not zero by any other network."""
    batch = random_batch(seed)
    batch["next_obs"] = batch["obs"].clone()
    batch["reward"] = torch.zeros(S, B)
    batch["action"] = agent.greedy(batch["obs"])
    return batch


ALL = torch.ones(S, dtype=torch.bool)


def test_target_none_values_next_state_with_current_online_params():
    """Zero TD error on self-consistent batches after every update: the target followed each
    update (a stale copy of earlier params would leave an error from the second one on)."""
    agent = make_agent(target="none", gamma=1.0)
    for t in range(3):
        out = agent.update(self_consistent_batch(agent, seed=t), ALL)
        torch.testing.assert_close(out.loss, torch.zeros(S), rtol=0, atol=1e-7)
        torch.testing.assert_close(out.td_abs, torch.zeros(S), rtol=0, atol=1e-7)
    before = agent.target_params.clone()
    agent.update(random_batch(seed=9), ALL)
    assert not torch.equal(agent.target_params, before)
    assert torch.equal(agent.target_params, agent.params.detach())


def copy_now(agent: Agent, ended: list[bool] | None = None) -> None:
    """The env-step event at which a hard target copies (all seeds, or those `ended`)."""
    ended = [True] * S if ended is None else ended
    period = agent.config.target_period
    agent.sync_target(step=period, episodes=torch.full((S,), period),
                      episode_ended=np.array(ended))


@pytest.mark.parametrize("target", ["hard_steps", "hard_episodes"])
def test_hard_target_is_used_for_next_state_until_copied(target):
    agent = make_agent(target=target, gamma=1.0)
    init = agent.params.detach().clone()
    agent.update(random_batch(seed=1), ALL)  # online moves, the target does not
    assert torch.equal(agent.target_params, init)
    out = agent.update(self_consistent_batch(agent, seed=2), ALL)
    assert (out.td_abs > 1e-4).all()  # valued by the stale target, not by the online net
    copy_now(agent)
    out = agent.update(self_consistent_batch(agent, seed=3), ALL)
    torch.testing.assert_close(out.loss, torch.zeros(S), rtol=0, atol=1e-7)


def test_hard_copy_copies_params_and_bn_stats_for_masked_seeds_only():
    agent = make_agent(target="hard_episodes", batchnorm=True)
    for t in range(3):
        agent.update(random_batch(seed=t), ALL)
    old_tp, old_ts = agent.target_params.clone(), agent.target_stats.clone()
    assert not torch.equal(agent.stats, old_ts)  # the updates moved the running stats
    mask = torch.tensor([True, False, True])
    copy_now(agent, ended=mask.tolist())
    for s in range(S):
        expect_p = agent.params[s].detach() if mask[s] else old_tp[s]
        expect_s = agent.stats[s] if mask[s] else old_ts[s]
        assert torch.equal(agent.target_params[s], expect_p)
        assert torch.equal(agent.target_stats[s], expect_s)
    # a copy, not an alias: the next update leaves the target where it was
    copied = agent.target_params.clone()
    agent.update(random_batch(seed=5), ALL)
    assert torch.equal(agent.target_params, copied)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_soft_update_is_polyak_average_after_each_update(tau):
    agent = make_agent(target="soft", tau=tau, batchnorm=True)
    mask = torch.tensor([True, True, False])
    for t in range(3):
        tp, ts = agent.target_params.clone(), agent.target_stats.clone()
        agent.update(random_batch(seed=t), mask)
        p, st = agent.params.detach(), agent.stats
        for s in range(S):
            if mask[s]:
                exp_p = tau * p[s] + (1 - tau) * tp[s]
                exp_s = tau * st[s] + (1 - tau) * ts[s]
            else:
                exp_p, exp_s = tp[s], ts[s]
            torch.testing.assert_close(agent.target_params[s], exp_p)
            torch.testing.assert_close(agent.target_stats[s], exp_s)
        assert not torch.equal(agent.target_params[0], tp[0])


def test_polyak_by_hand():
    target = torch.tensor([[0.0, 4.0], [1.0, 1.0], [2.0, -2.0]])  # (S=3, 2)
    online = torch.tensor([[2.0, 0.0], [3.0, 5.0], [np.inf, np.nan]])
    due = torch.tensor([True, False, True])
    # 0.25 * online + 0.75 * target on rows 0 and 2; row 1 untouched
    out = polyak(target, online, 0.25, due)
    torch.testing.assert_close(out[:2], torch.tensor([[0.5, 3.0], [1.0, 1.0]]))
    # tau = 1 is an exact copy, non-finite values included (a diverged seed stays diverged)
    out = polyak(target, online, 1.0, due)
    assert torch.equal(out[:2], torch.tensor([[2.0, 0.0], [1.0, 1.0]]))
    assert out[2, 0] == np.inf and torch.isnan(out[2, 1])


def test_double_dqn_picks_with_online_and_values_with_target():
    """Wiring check: the agent's loss equals the Huber loss of a target built by hand from the
    online net's argmax and the target net's values (network outputs from q_values, which
    test_networks checks against torch.nn)."""
    agent = make_agent(target="hard_steps", double_dqn=True, gamma=0.9, loss="huber")
    agent.update(random_batch(seed=1), ALL)  # online != target from here
    batch = random_batch(seed=2)
    batch["terminated"][:, :2] = True
    with torch.no_grad():
        q_online_next, _ = q_values(agent.spec, agent.params, agent.stats, batch["next_obs"])
        q_target_next, _ = q_values(agent.spec, agent.target_params, agent.target_stats,
                                    batch["next_obs"])
        q, _ = q_values(agent.spec, agent.params, agent.stats, batch["obs"], train=True)
    q_taken = q.gather(-1, batch["action"][..., None])[..., 0]
    boot = (~batch["terminated"]).float()

    def loss_with(next_value: torch.Tensor) -> torch.Tensor:
        y = batch["reward"] + 0.9 * boot * next_value
        return F.smooth_l1_loss(q_taken, y, reduction="none").mean(dim=1)

    double = q_target_next.gather(-1, q_online_next.argmax(-1, keepdim=True))[..., 0]
    plain = q_target_next.max(dim=-1).values
    assert not torch.allclose(double, plain)  # the two nets disagree somewhere
    out = agent.update(batch, ALL)
    torch.testing.assert_close(out.loss, loss_with(double))
    assert not torch.allclose(out.loss, loss_with(plain))


@pytest.mark.parametrize("kind", ["huber", "mse"])
def test_td_loss_grad_is_the_gradient_of_td_loss(kind):
    q = Q_TAKEN.clone().requires_grad_()
    (auto,) = torch.autograd.grad(td_loss(q, TARGET, kind).sum(), q)
    torch.testing.assert_close(td_loss_grad(Q_TAKEN, TARGET, kind), auto)
    # by hand, item (1, 2): d = 3; mse 2 * 3 / 3 = 2; huber clamps to 1 / 3
    assert td_loss_grad(Q_TAKEN, TARGET, kind)[1, 2] == (1 / 3 if kind == "huber" else 2.0)
