"""Seeds are independent: a seed's records depend on that seed alone (README "Seeds").

A seed trained alone, in a batch of 8 or 32, or beside other seeds in another position gives
identical episodes, evaluations and diagnostics (CPU, bit for bit); a study extended from 10
to 20 seeds equals one run with 20; different seeds still differ; and CartPole's reset states
keep gymnasium's distribution although each sub-env now draws them from its own key.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from study_fixtures import csv_bytes, tiny_study_text

import dqn.core.train
from dqn.base.config import from_dict
from dqn.core.agent import Agent
from dqn.core.envs import SeededVecEnv
from dqn.core.seeding import Stream, keys, stream_seed, uniform
from dqn.core.train import train
from dqn.run import runner, studyfile

pytestmark = pytest.mark.usefixtures("single_thread_torch")

RUN = {"total_steps": 3_000, "learning_starts": 500, "eval_every": 1_000, "eval_episodes": 3,
       "log_every": 500, "device": "cpu"}
CASES = {
    "cartpole_default": ("CartPole-v1", {}),
    "cartpole_memory_clearing": ("CartPole-v1", {"clear_memory_each_episode": True}),
    "cartpole_store_probability": ("CartPole-v1", {"store_probability": 0.5}),
    "cartpole_hard_episodes_batchnorm": ("CartPole-v1", {
        "target": "hard_episodes", "target_period": 2, "batchnorm": True,
        "epsilon_schedule": "exp_episode", "epsilon_decay": 20.0}),
    "acrobot_default": ("Acrobot-v1", {}),
    "cartpole_c51_nstep_prioritized": ("CartPole-v1", {
        "distributional": True, "n_atoms": 11, "n_step": 3, "prioritized_replay": True}),
    "acrobot_store_probability_hard_episodes": ("Acrobot-v1", {
        "store_probability": 0.5, "target": "hard_episodes", "target_period": 2,
        "clear_memory_each_episode": True}),
}
TABLES = ("episodes", "evals", "diagnostics")
J = 5  # the seed followed through every batch


def records_of(records, seed: int) -> dict[str, pd.DataFrame]:
    return {t: getattr(records, t)[getattr(records, t)["seed"] == seed].reset_index(drop=True)
            for t in TABLES}


@pytest.mark.parametrize("case", CASES)
def test_a_seed_gives_the_same_records_alone_and_in_any_batch(case: str) -> None:
    env_id, knobs = CASES[case]
    config = from_dict({**RUN, "env_id": env_id, **knobs})
    batches = [[J], list(range(8)), [40, J, 13]]
    if case == "cartpole_default":
        batches.append(list(range(32)))
    runs = [records_of(train(config, seeds), J) for seeds in batches]
    alone = runs[0]
    assert len(alone["episodes"]) >= 5 and len(alone["evals"]) == 3
    assert alone["diagnostics"]["loss"].notna().sum() >= 2  # it learned
    for seeds, other in zip(batches[1:], runs[1:], strict=True):
        for table in TABLES:
            pd.testing.assert_frame_equal(other[table], alone[table], check_exact=True,
                                          obj=f"seed {J} in {seeds}: {table}")


def test_different_seeds_differ_in_weights_exploration_resets_and_records() -> None:
    seeds = [0, 1, 2, 3]
    config = from_dict(RUN)
    agent = Agent(config, 4, 2, [stream_seed(s, "init") for s in seeds], torch.device("cpu"))
    rows = {tuple(row.tolist()) for row in agent.params}
    assert len(rows) == len(seeds)
    explore = Stream(seeds, "explore", torch.device("cpu"), uniform())
    draws = torch.stack([explore.next() for _ in range(20)], dim=1)  # (S, 20)
    assert len({tuple(row.tolist()) for row in draws}) == len(seeds)
    env = SeededVecEnv("CartPole-v1", len(seeds))
    first = env.reset(keys(seeds, "env"))  # (S, 4)
    assert len({tuple(row.tolist()) for row in first}) == len(seeds)
    env.close()
    episodes = train(config, seeds).episodes
    returns = episodes.groupby("seed")["return"].apply(tuple)
    assert returns.nunique() == len(seeds)


def test_a_stream_is_the_seeds_own_generator_whatever_the_batch() -> None:
    """The k-th explore draw of seed 7 is the k-th torch.rand of a generator seeded with
    SeedSequence(7, spawn_key=(stream index,)), alone or beside other seeds."""
    key = int(np.random.SeedSequence(7, spawn_key=[1]).generate_state(1, np.uint64)[0] >> 1)
    expected = torch.rand(150, generator=torch.Generator().manual_seed(key))  # 3 blocks' worth
    for seeds, row in (([7], 0), ([3, 7, 9], 1)):
        s = Stream(seeds, "explore", torch.device("cpu"), uniform())
        got = torch.stack([s.next()[row] for _ in range(150)])
        assert torch.equal(got, expected)


def _cartpole_resets(n: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """First reset states of n sub-envs, and the states every autoreset started from (random
    actions), through SeededVecEnv."""
    env = SeededVecEnv("CartPole-v1", n)
    first = env.reset(keys(list(range(n)), "env"))
    rng = np.random.default_rng(0)
    later = []
    for _ in range(steps):
        resetting = env.autoreset.copy()
        obs, *_ = env.step(rng.integers(0, 2, n))
        later.append(obs[resetting])
    env.close()
    return first, np.concatenate(later)


def test_cartpole_reset_states_keep_gymnasiums_distribution() -> None:
    """Bounds, mean, spread and shape (Kolmogorov-Smirnov against U(-0.05, 0.05) and against
    gymnasium's own CartPoleVectorEnv draws), for first states and autoreset states."""
    first, later = _cartpole_resets(5_000, 100)
    assert len(later) > 10_000
    env = gym.make_vec("CartPole-v1", num_envs=20_000, vectorization_mode="vector_entry_point")
    reference, _ = env.reset(seed=123)
    env.close()
    sd = 0.1 / np.sqrt(12)  # of U(-0.05, 0.05)
    for states in (first, later):
        n = len(states)
        assert states.dtype == np.float32 and states.shape[1] == 4
        assert states.min() >= -0.05 and states.max() <= 0.05
        assert np.all(np.abs(states.mean(axis=0)) < 4 * sd / np.sqrt(n))
        # the sample sd of a uniform has standard error sd * sqrt(0.8 / n) (kurtosis 1.8)
        assert np.all(np.abs(states.std(axis=0) - sd) < 4 * sd * np.sqrt(0.8 / n))
        for k in range(4):
            assert stats.kstest(states[:, k], stats.uniform(-0.05, 0.1).cdf).pvalue > 1e-3
            assert stats.ks_2samp(states[:, k], reference[:, k]).pvalue > 1e-3
        corr = np.corrcoef(states.T)[np.triu_indices(4, 1)]
        assert np.all(np.abs(corr) < 4 / np.sqrt(n))  # components still independent


def _tiny(tmp_path: Path) -> studyfile.StudyFile:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text("Added seeds.", 10))
    return studyfile.load(path)


def test_seeds_added_to_a_finished_study_equal_one_run_with_them_all(tmp_path: Path,
                                                                     monkeypatch) -> None:
    s, kw = _tiny(tmp_path), {"figures": False, "progress": False}
    at_once = runner.run(s, out_dir=tmp_path / "at_once", seeds=20, **kw)
    grown = tmp_path / "grown"
    runner.run(s, out_dir=grown, seeds=10, seed_chunk=4, **kw)
    calls = []
    real = dqn.core.train.train

    def recording(config, seeds, progress=None):
        calls.append((config.target, list(seeds)))
        return real(config, seeds, progress)

    monkeypatch.setattr(dqn.core.train, "train", recording)
    out = runner.run(s, out_dir=grown, seeds=20, **kw)
    assert calls == [("hard_steps", list(range(10, 20))), ("none", list(range(10, 20)))]
    assert csv_bytes(out) == csv_bytes(at_once)
    run = json.loads((out / "run.json").read_text())
    for meta in run["variants"].values():
        assert meta["seeds"] == list(range(20))
        assert [ch["seeds"] for ch in meta["chunks"]] == [
            [0, 1, 2, 3], [4, 5, 6, 7], [8, 9], list(range(10, 20))]
    calls.clear()  # fewer seeds than finished: nothing to train, and nothing dropped
    runner.run(s, out_dir=grown, seeds=5, **kw)
    assert calls == [] and csv_bytes(out) == csv_bytes(at_once)
