"""n-step returns (dqn.core.nstep, config n_step): windows by hand across a termination, a
truncation, an autoreset, memory clearing and a skipped store; the target with gamma^m; per-seed
independence; n_step = 1 leaves the one-step agent exactly as it was."""

from __future__ import annotations

import pytest
import torch

import dqn.core.train
from dqn.base.config import Config, from_dict
from dqn.core.agent import Agent
from dqn.core.nstep import NStepQueue, nstep_return
from dqn.core.replay import Replay

CPU = torch.device("cpu")
G = 0.5  # gamma: powers are exact in binary


def test_nstep_return_by_hand():
    reward = torch.tensor([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [8.0, 0.0, 0.0]])
    done = torch.tensor([[0, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    size = torch.tensor([3, 3, 3, 1])
    R, m = nstep_return(reward, done, size, G)
    # 1 + .5*2 + .25*4; the window ends at the done of k=1; at k=0; the done at k=2 is beyond
    # what is pending (size 1), so it is not this window's
    assert R.tolist() == [3.0, 2.0, 1.0, 8.0]
    assert m.tolist() == [3, 2, 1, 1]


def run_queue(steps: list[tuple], n: int = 3, S: int = 1) -> list[list[tuple]]:
    """Feed one seed's steps (reward, terminated, truncated, valid) into a queue; the obs of
    step t is t, its next obs t + 0.5 (so a window's end is readable). Returns per step the
    released (obs, R, next_obs, terminated, truncated, m), or [] when nothing is released."""
    q = NStepQueue(S, n, 1, G, CPU)
    out = []
    for t, (r, term, trunc, valid) in enumerate(steps):
        rel = q.step(torch.full((S, 1), float(t)), torch.zeros(S, dtype=torch.long),
                     torch.full((S,), float(r)), torch.full((S, 1), t + 0.5),
                     torch.full((S,), term), torch.full((S,), trunc), torch.full((S,), valid))
        out.append([(rel.obs[i, 0].item(), rel.reward[i].item(), rel.next_obs[i, 0].item(),
                     rel.terminated[i].item(), rel.truncated[i].item(), rel.horizon[i].item())
                    for i in range(S) if rel.ready[i]])
    return out


#        reward, terminated, truncated, valid (False: the autoreset step, no transition)
EPISODES = [(1, False, False, True),   # 0  episode A
            (2, False, False, True),   # 1
            (4, False, False, True),   # 2
            (8, True, False, True),    # 3  A terminates
            (0, False, False, False),  # 4  autoreset: no transition
            (1, False, False, True),   # 5  episode B
            (2, False, True, True),    # 6  B is truncated after two steps
            (0, False, False, False),  # 7  autoreset
            (4, False, False, True),   # 8  episode C
            (8, False, False, True),   # 9
            (16, False, False, True)]  # 10


def test_windows_stop_at_a_termination_a_truncation_and_never_cross_an_autoreset():
    out = run_queue(EPISODES)
    expected = [
        [], [],
        [(0, 1 + .5 * 2 + .25 * 4, 2.5, False, False, 3)],   # step 2: A0's window is full
        [(1, 2 + .5 * 4 + .25 * 8, 3.5, True, False, 3)],    # step 3: A1, ends at the terminal
        [(2, 4 + .5 * 8, 3.5, True, False, 2)],              # A2 over the autoreset step
        [(3, 8, 3.5, True, False, 1)],                       # A3, while B0 waits
        [(5, 1 + .5 * 2, 6.5, False, True, 2)],              # B0 stops at the truncation,
        [(6, 2, 6.5, False, True, 1)],                       # with s' the true final obs
        [], [],
        [(8, 4 + .5 * 8 + .25 * 16, 10.5, False, False, 3)],  # C: nothing of B in it
    ]
    assert out == expected


def test_seeds_are_queued_independently():
    """A seed's releases are the same alone and beside a seed whose episodes end elsewhere."""
    alone = run_queue(EPISODES)
    other = [(1, False, False, True)] * len(EPISODES)
    other[1] = (1, True, False, True)
    other[2] = (0, False, False, False)
    q = NStepQueue(2, 3, 1, G, CPU)
    both = []
    for t, (a, b) in enumerate(zip(EPISODES, other, strict=True)):
        rel = q.step(torch.full((2, 1), float(t)), torch.zeros(2, dtype=torch.long),
                     torch.tensor([float(a[0]), float(b[0])]), torch.full((2, 1), t + 0.5),
                     torch.tensor([a[1], b[1]]), torch.tensor([a[2], b[2]]),
                     torch.tensor([a[3], b[3]]))
        both.append([(rel.obs[0, 0].item(), rel.reward[0].item(), rel.next_obs[0, 0].item(),
                      rel.terminated[0].item(), rel.truncated[0].item(), rel.horizon[0].item())]
                    if rel.ready[0] else [])
    assert both == alone


def test_clearing_drops_the_pending_transitions():
    """Memory clearing at A's end forgets A's pending transitions: only C's and B's windows
    are released after it, and none reaches back into A."""
    q = NStepQueue(1, 3, 1, G, CPU)
    released = []
    for t, (r, term, trunc, valid) in enumerate(EPISODES):
        rel = q.step(torch.full((1, 1), float(t)), torch.zeros(1, dtype=torch.long),
                     torch.tensor([float(r)]), torch.full((1, 1), t + 0.5),
                     torch.tensor([term]), torch.tensor([trunc]), torch.tensor([valid]))
        if rel.ready[0]:
            released.append(rel.obs[0, 0].item())
        if term or trunc:
            q.clear(torch.tensor([True]))
    assert released == [0, 1, 5, 8]  # A3, A2 and B6 were pending at their episode's end


def test_n_equal_one_releases_every_transition_at_once():
    out = run_queue(EPISODES, n=1)
    assert [x for step in out for x in step] == [
        (t, float(r), t + 0.5, term, trunc, 1)
        for t, (r, term, trunc, valid) in enumerate(EPISODES) if valid]


def test_target_bootstraps_with_gamma_to_the_horizon():
    """y = c R + gamma^m * mask * max_a Q_target(s', a), checked through Agent.update against
    the target net's Q-values computed here."""
    config = from_dict({"total_steps": 100, "learning_starts": 10, "batch_size": 3,
                        "buffer_size": 10, "hidden": [4], "device": "cpu", "n_step": 3,
                        "gamma": 0.9, "reward_scale": 0.5, "lr": 0.0, "dueling": False})
    agent = Agent(config, 2, 2, [7], CPU)
    g = torch.Generator().manual_seed(0)
    batch = {"obs": torch.randn(1, 3, 2, generator=g), "action": torch.tensor([[0, 1, 0]]),
             "reward": torch.tensor([[1.0, 2.0, 3.0]]),
             "next_obs": torch.randn(1, 3, 2, generator=g),
             "terminated": torch.tensor([[False, True, False]]),
             "truncated": torch.tensor([[False, False, True]]),
             "horizon": torch.tensor([[3, 2, 1]])}
    p = agent.params[0]
    w1, b1 = p[:8].view(2, 4), p[8:12]
    w2, b2 = p[12:20].view(4, 2), p[20:22]

    def q(x):  # the plain MLP, weights stored (in, out)
        return torch.relu(x @ w1 + b1) @ w2 + b2

    next_max = q(batch["next_obs"][0]).max(dim=-1).values
    y = torch.tensor([0.5 * 1.0 + 0.9 ** 3 * next_max[0], 0.5 * 2.0,  # terminal: no bootstrap
                      0.5 * 3.0 + 0.9 * next_max[2]])  # truncated: bootstraps after 1 step
    q_taken = q(batch["obs"][0]).gather(-1, batch["action"][0][:, None]).squeeze(-1)
    out = agent.update(batch, torch.ones(1, dtype=torch.bool))
    torch.testing.assert_close(out.loss, ((q_taken - y) ** 2).mean()[None])


def test_replay_keeps_horizons_only_when_asked():
    plain = Replay(1, 4, 2, CPU)
    assert "horizon" not in plain.sample(torch.zeros(1, 2))
    r = Replay(1, 4, 2, CPU, horizon=True)
    one = (torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), torch.ones(1),
           torch.zeros(1, 2), torch.zeros(1, dtype=torch.bool), torch.zeros(1, dtype=torch.bool))
    r.add(*one, torch.ones(1, dtype=torch.bool), horizon=torch.tensor([3]))
    assert r.sample(torch.zeros(1, 2))["horizon"].tolist() == [[3, 3]]
    with pytest.raises(ValueError, match="pass horizon"):
        r.add(*one, torch.ones(1, dtype=torch.bool))


def test_skipped_stores_leave_the_windows_whole(monkeypatch):
    """With store_probability 0.5, about half the n-step transitions reach replay, and each
    one's return still sums its whole window: on CartPole (reward 1 per step) R = sum_{k<m}
    gamma^k, with m = 3 except for an episode's last transitions, which end at its end."""
    stored = []
    real_add = Replay.add

    def add(self, *args, horizon=None, **kw):
        keep = args[6]
        stored.extend(zip(args[2][keep].tolist(), horizon[keep].tolist(),
                          (args[4] | args[5])[keep].tolist(), strict=True))
        return real_add(self, *args, horizon=horizon, **kw)

    monkeypatch.setattr(Replay, "add", add)
    config = Config(total_steps=600, learning_starts=100, n_step=3, gamma=0.9,
                    store_probability=0.5, eval_every=600, eval_episodes=1, log_every=100,
                    device="cpu")
    dqn.core.train.train(config, [0, 1])
    assert 0.4 * 1200 < len(stored) < 0.6 * 1200
    for R, m, done in stored:
        assert R == pytest.approx(sum(0.9 ** k for k in range(m)), abs=1e-6)
        assert m == 3 or done  # shorter windows only where the episode ended
    assert {m for _, m, _ in stored} == {1, 2, 3}


def test_n_step_one_is_the_one_step_agent():
    """n_step = 1 takes the one-step code path: the config hash and the numbers are those of
    a config without the key (committed results stay valid)."""
    base = Config(total_steps=300, learning_starts=100, eval_every=150, eval_episodes=1,
                  log_every=100, device="cpu")
    assert base.hash() == Config(**{**base.__dict__, "n_step": 1}).hash()
    assert base.hash() != Config(**{**base.__dict__, "n_step": 2}).hash()
    d = base.to_dict()
    d.pop("n_step")
    assert from_dict(d).hash() == base.hash()


def test_n_step_training_is_per_seed():
    """A seed trained alone gets the records it gets beside another seed (with clearing and
    store probability too, the per-seed parts of the window)."""
    c = Config(total_steps=400, learning_starts=100, eval_every=200, eval_episodes=1,
               log_every=100, device="cpu", n_step=3, store_probability=0.7,
               clear_memory_each_episode=True)
    both = dqn.core.train.train(c, [0, 1]).diagnostics
    alone = dqn.core.train.train(c, [1]).diagnostics
    assert both[both["seed"] == 1].reset_index(drop=True).equals(alone)
