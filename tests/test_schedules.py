"""Exploration schedules at known points, and when target copies happen (unit and in training)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dqn.core.agent
import dqn.core.train
from dqn.base.config import from_dict
from dqn.core.agent import Agent
from dqn.core.schedules import epsilon

pytestmark = pytest.mark.usefixtures("single_thread_torch")

CPU = torch.device("cpu")


def eps_config(schedule: str):
    return from_dict({"epsilon_schedule": schedule, "epsilon_start": 1.0, "epsilon_end": 0.1,
                      "epsilon_decay": 100})


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 1.0), (25, 0.775), (50, 0.55), (100, 0.1), (101, 0.1), (5000, 0.1)],
)
def test_linear_schedule(step, expected):
    eps = epsilon(eps_config("linear"), step, torch.tensor([0, 3, 7]))
    torch.testing.assert_close(eps, torch.full((3,), expected))


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 1.0), (100, 0.1 + 0.9 * math.exp(-1)), (200, 0.1 + 0.9 * math.exp(-2)),
     (10_000, 0.1)],
)
def test_exp_step_schedule(step, expected):
    eps = epsilon(eps_config("exp_step"), step, torch.tensor([0, 3, 7]))
    torch.testing.assert_close(eps, torch.full((3,), expected))


@pytest.mark.parametrize("step", [1, 500, 99_999])
def test_exp_episode_schedule_is_per_seed_and_ignores_steps(step):
    eps = epsilon(eps_config("exp_episode"), step, torch.tensor([0, 50, 100, 300]))
    expected = [1.0, 0.1 + 0.9 * math.exp(-0.5), 0.1 + 0.9 * math.exp(-1),
                0.1 + 0.9 * math.exp(-3)]
    torch.testing.assert_close(eps, torch.tensor(expected))


# target copies ------------------------------------------------------------------------------

S = 3


def make_agent(target: str, period: int = 3) -> Agent:
    config = from_dict({"total_steps": 100, "learning_starts": 10, "batch_size": 4,
                        "buffer_size": 50, "hidden": [4], "device": "cpu", "target": target,
                        "target_period": period})
    return Agent(config, 2, 2, [0, 1, 2], CPU)


def copied_seeds(agent: Agent, step: int, episodes: list[int], ended: list[bool]) -> list[int]:
    """Move the online params, sync, and report which seeds' targets now equal them."""
    with torch.no_grad():
        agent.params.add_(float(step))
    agent.sync_target(step=step, episodes=torch.tensor(episodes), episode_ended=np.array(ended))
    return [s for s in range(S) if torch.equal(agent.target_params[s], agent.params[s])]


def test_hard_steps_copies_every_seed_at_multiples_of_the_period():
    agent = make_agent("hard_steps", period=3)
    copies = {}
    for step in range(1, 11):
        ended = [step == 4, False, step in (2, 3)]  # episode ends do not matter here
        copies[step] = copied_seeds(agent, step, [step // 4, 0, 1], ended)
    assert copies == {s: [0, 1, 2] if s % 3 == 0 else [] for s in range(1, 11)}


def test_hard_episodes_copies_a_seed_when_its_episode_count_hits_the_period():
    agent = make_agent("hard_episodes", period=2)
    # (episodes finished so far, which seeds ended an episode this step) per step
    script = [
        ([1, 0, 0], [True, False, False]),  # seed 0 at 1: no copy
        ([2, 1, 0], [True, True, False]),  # seed 0 reaches 2: copy seed 0
        ([2, 2, 1], [False, True, True]),  # seed 1 reaches 2; seed 0 at 2 did not just end
        ([2, 2, 1], [False, False, False]),  # nothing ended: no copy, whatever the counts
        ([3, 2, 2], [True, False, True]),  # seed 2 reaches 2, seed 0 at 3 is not a multiple
        ([4, 3, 2], [True, True, False]),  # seed 0 reaches 4
        ([4, 3, 2], [False, False, False]),  # step 6 is no special step for hard_episodes
    ]
    copies = [copied_seeds(agent, t + 1, eps, ended) for t, (eps, ended) in enumerate(script)]
    assert copies == [[], [0], [1], [], [2], [0], []]


@pytest.mark.parametrize("target", ["soft", "none"])
def test_sync_target_does_nothing_for_soft_and_none(target):
    agent = make_agent(target, period=1)
    before = agent.target_params.clone()
    for step in range(1, 5):
        assert copied_seeds(agent, step, [step] * S, [True] * S) == []
    assert torch.equal(agent.target_params, before)


def test_soft_target_moves_after_every_update_only():
    config = from_dict({"total_steps": 100, "learning_starts": 10, "batch_size": 4,
                        "buffer_size": 50, "hidden": [4], "device": "cpu", "target": "soft",
                        "tau": 0.25})
    agent = Agent(config, 2, 2, [0, 1, 2], CPU)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        batch = {"obs": torch.randn(S, 4, 2, generator=g), "action": torch.zeros(S, 4).long(),
                 "reward": torch.ones(S, 4), "next_obs": torch.randn(S, 4, 2, generator=g),
                 "terminated": torch.zeros(S, 4, dtype=torch.bool),
                 "truncated": torch.zeros(S, 4, dtype=torch.bool)}
        target_before = agent.target_params.clone()
        agent.update(batch, torch.ones(S, dtype=torch.bool))
        expected = 0.25 * agent.params.detach() + 0.75 * target_before
        torch.testing.assert_close(agent.target_params, expected)


# the same rules inside a real training run ---------------------------------------------------

def _recording_run(monkeypatch, target: str, period: int, seeds: list[int]):
    """Train briefly, recording every env-step sync with the step and the episode counts it
    saw, and every hard copy (a Polyak update with tau 1) with the step and its seed mask."""
    calls: list[tuple[int, list[int], list[bool]]] = []
    copies: list[tuple[int, list[bool]]] = []
    sync, real_polyak = Agent.sync_target, dqn.core.agent.polyak

    def spy_sync(self, **kw):
        if "step" in kw:  # after an env step (not after a gradient step)
            calls.append((kw["step"], kw["episodes"].tolist(), kw["episode_ended"].tolist()))
        sync(self, **kw)

    def spy_polyak(target, online, tau, due):
        if tau == 1.0 and target.shape[1] > 0:  # the params' copy (not the empty BN stats')
            copies.append((calls[-1][0], due.tolist()))
        return real_polyak(target, online, tau, due)

    monkeypatch.setattr(Agent, "sync_target", spy_sync)
    monkeypatch.setattr(dqn.core.agent, "polyak", spy_polyak)
    config = from_dict({"total_steps": 240, "learning_starts": 100, "batch_size": 16,
                        "buffer_size": 240, "hidden": [16], "device": "cpu", "target": target,
                        "target_period": period, "eval_every": 240, "eval_episodes": 1,
                        "log_every": 120})
    records = dqn.core.train.train(config, seeds)
    return records, calls, copies


def test_training_copies_hard_steps_targets_at_multiples_of_the_period(monkeypatch):
    _, calls, copies = _recording_run(monkeypatch, "hard_steps", 50, [0, 1])
    assert [c[0] for c in calls] == list(range(1, 241))
    assert copies == [(s, [True, True]) for s in (50, 100, 150, 200)]


def test_training_copies_hard_episodes_targets_per_seed(monkeypatch):
    seeds = [0, 1, 2]
    records, calls, copies = _recording_run(monkeypatch, "hard_episodes", 3, seeds)
    assert [c[0] for c in calls] == list(range(1, 241))
    # expected from the episode table alone: a seed's copy lands on the env step at which its
    # 3rd, 6th, ... episode ended
    ep = records.episodes
    due = {(int(r.env_step), seeds.index(int(r.seed))) for r in ep.itertuples()
           if r.episode % 3 == 0}
    got = {(step, s) for step, mask in copies for s in range(len(seeds)) if mask[s]}
    assert got == due
    assert len(due) >= 3  # short CartPole episodes: several copies per seed in 240 steps
    # the counts handed to sync_target are the finished-episode counts so far
    final = calls[-1][1]
    assert final == [int((ep.seed == s).sum()) for s in seeds]
