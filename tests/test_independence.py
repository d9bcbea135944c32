"""Seeds never mix: one seed's data, mask or NaN leaves every other seed exactly as it would be."""

from __future__ import annotations

import pytest
import torch

from dqn.base.config import from_dict
from dqn.core.agent import Agent
from dqn.core.netspec import NetSpec, init_params, init_stats
from dqn.core.networks import q_values

pytestmark = pytest.mark.usefixtures("single_thread_torch")

S, B, OBS, ACTIONS = 4, 8, 3, 2
CPU = torch.device("cpu")

KNOBS = {
    "plain": {},
    "batchnorm_dueling": {"batchnorm": True, "dueling": True},
    "double_soft_clip_adamw": {"double_dqn": True, "target": "soft", "max_grad_norm": 0.5,
                               "optimizer": "adamw", "loss": "mse"},
    "bn_max_none": {"batchnorm": True, "dueling": True, "dueling_aggregation": "max",
                    "target": "none", "activation": "tanh"},
    "c51_double_bn": {"distributional": True, "n_atoms": 7, "double_dqn": True,
                      "batchnorm": True},
    "c51_noisy_mean": {"distributional": True, "n_atoms": 7, "noisy": True,
                       "dueling_aggregation": "mean"},
}


def make_agent(**overrides) -> Agent:
    config = from_dict({"total_steps": 100, "learning_starts": 10, "batch_size": B,
                        "buffer_size": 50, "hidden": [6, 5], "device": "cpu", "lr": 0.01,
                        **overrides})
    return Agent(config, OBS, ACTIONS, [10 + s for s in range(S)], CPU)


def make_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randn(S, B, OBS, generator=g),
        "action": torch.randint(ACTIONS, (S, B), generator=g),
        "reward": torch.randn(S, B, generator=g),
        "next_obs": torch.randn(S, B, OBS, generator=g),
        "terminated": torch.rand(S, B, generator=g) < 0.3,
        "truncated": torch.rand(S, B, generator=g) < 0.2,
    }


def state_of(agent: Agent) -> dict[str, torch.Tensor]:
    """Every per-seed tensor the agent carries, each with leading dim S."""
    return {
        "params": agent.params.detach().clone(),
        "exp_avg": agent.optimizer.exp_avg.clone(),
        "exp_avg_sq": agent.optimizer.exp_avg_sq.clone(),
        "steps": agent.optimizer.steps.clone(),
        "stats": agent.stats.clone(),
        "target_params": agent.target_params.clone(),
        "target_stats": agent.target_stats.clone(),
    }


ALL = torch.ones(S, dtype=torch.bool)


@pytest.mark.parametrize("dueling", [None, "mean", "max"])
@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_changing_one_seeds_batch_changes_no_other_gradient(batchnorm, dueling, train):
    spec = NetSpec(OBS, ACTIONS, (6, 5), "relu", batchnorm, dueling is not None,
                   dueling or "mean")
    flat = init_params(spec, list(range(S)), CPU).requires_grad_()
    stats = init_stats(spec, S, CPU)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(S, B, OBS, generator=g)
    x2 = x.clone()
    j = 2
    x2[j] = torch.randn(B, OBS, generator=g) * 5
    grads, outs = [], []
    for inp in (x, x2):
        q, new_stats = q_values(spec, flat, stats, inp, train=train)
        (grad,) = torch.autograd.grad((q ** 2).sum(), flat)
        grads.append(grad)
        outs.append((q.detach(), new_stats))
    others = [i for i in range(S) if i != j]
    assert torch.equal(grads[0][others], grads[1][others])
    assert torch.equal(outs[0][0][others], outs[1][0][others])
    assert torch.equal(outs[0][1][others], outs[1][1][others])
    assert not torch.equal(grads[0][j], grads[1][j])


@pytest.mark.parametrize("knobs", list(KNOBS), ids=list(KNOBS))
@pytest.mark.parametrize("field", ["obs", "action", "reward", "next_obs", "terminated"])
def test_changing_one_seeds_batch_changes_no_other_seed_after_update(knobs, field):
    a, b = make_agent(**KNOBS[knobs]), make_agent(**KNOBS[knobs])
    batch = make_batch()
    other = make_batch(seed=99)
    j = 1
    changed = {k: v.clone() for k, v in batch.items()}
    changed[field][j] = other[field][j]
    for _ in range(3):
        a.update(batch, ALL)
        b.update(changed, ALL)
    sa, sb = state_of(a), state_of(b)
    others = [i for i in range(S) if i != j]
    for name in sa:
        assert torch.equal(sa[name][others], sb[name][others]), name
    assert not torch.equal(sa["params"][j], sb["params"][j])


@pytest.mark.parametrize("knobs", list(KNOBS), ids=list(KNOBS))
@pytest.mark.parametrize("poison", [False, True])
def test_masked_seed_is_left_bit_identical(knobs, poison):
    """A masked seed keeps params, Adam state, BN stats and target exactly, even when its batch
    is garbage (NaN): memory clearing can leave a seed with nothing to sample."""
    agent = make_agent(**KNOBS[knobs])
    for t in range(3):  # non-trivial optimizer state, BN stats and (soft) target first
        agent.update(make_batch(seed=t), ALL)
    before = state_of(agent)
    mask = torch.tensor([True, False, True, False])
    batch = make_batch(seed=7)
    if poison:
        batch["obs"][1] = float("nan")
        batch["reward"][3] = float("inf")
    for _ in range(2):
        out = agent.update(batch, mask)
        assert torch.equal(out.updated, mask)
    after = state_of(agent)
    for name in before:
        for s in (1, 3):
            assert torch.equal(after[name][s], before[name][s]), (name, s)
    assert not torch.equal(after["params"][0], before["params"][0])
    assert torch.isfinite(after["params"]).all()


@pytest.mark.parametrize("knobs", list(KNOBS), ids=list(KNOBS))
@pytest.mark.parametrize("field", ["obs", "reward", "next_obs"])
def test_nan_in_one_seed_leaves_the_others_finite_and_unchanged(knobs, field):
    clean, dirty = make_agent(**KNOBS[knobs]), make_agent(**KNOBS[knobs])
    j = 2
    for t in range(3):
        batch = make_batch(seed=t)
        poisoned = {k: v.clone() for k, v in batch.items()}
        poisoned[field][j, 0] = float("nan")
        out_clean = clean.update(batch, ALL)
        out_dirty = dirty.update(poisoned, ALL)
    others = [i for i in range(S) if i != j]
    sc, sd = state_of(clean), state_of(dirty)
    for name in sc:
        assert torch.isfinite(sd[name][others]).all(), name
        assert torch.equal(sc[name][others], sd[name][others]), name
    for stat in ("loss", "q_mean", "td_abs", "grad_norm"):
        assert torch.equal(getattr(out_clean, stat)[others], getattr(out_dirty, stat)[others])
    assert torch.isnan(out_dirty.loss[j])  # the poison did reach seed j
    assert torch.isnan(sd["params"][j]).any()
