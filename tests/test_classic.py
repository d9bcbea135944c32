"""The batched classic-control environments (dqn.core.classic) against gymnasium's own.

On the CPU they compute with numpy, as gymnasium does, so every observation, reward and flag
must be bit-identical to dqn.core.envs.SeededVecEnv (gymnasium's environments with the
project's seeded resets) over 10,000 steps of a policy that both balances (truncations) and
fails or reaches the goal (terminations). The torch arithmetic used on other devices is checked
one step at a time from the same states, within a bound measured on this machine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dqn.core.classic import KINDS, ClassicVecEnv
from dqn.core.envs import SeededVecEnv

ENV_IDS = sorted(KINDS)
STEPS = 10_000
N = 8


def policy(env_id: str, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A policy that reaches every kind of episode end: sub-env i acts at random with
    probability i / N, else pushes the way that balances the pole (CartPole: truncations)
    or pumps energy (Acrobot, MountainCar: the goal, so terminations)."""
    n = len(obs)
    if env_id.startswith("CartPole"):
        good = (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)
        n_actions = 2
    else:
        velocity = obs[:, 5] if env_id == "Acrobot-v1" else obs[:, 1]  # Acrobot: dtheta2
        good, n_actions = np.where(velocity > 0, 2, 0), 3
    explore = rng.random(n) < np.arange(n) / n
    return np.where(explore, rng.integers(0, n_actions, n), good)


def keys(n: int) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 2**63, n, dtype=np.uint64)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_bit_identical_to_gymnasium(env_id: str) -> None:
    reference, batched = SeededVecEnv(env_id, N), ClassicVecEnv(env_id, N)
    obs = reference.reset(keys(N))
    mine = batched.reset(keys(N))
    assert mine.dtype == obs.dtype and np.array_equal(mine, obs)
    rng = np.random.default_rng(2)
    ends = {"terminated": 0, "truncated": 0}
    for step in range(STEPS):
        action = policy(env_id, obs, rng)
        theirs = reference.step(action)
        ours = batched.step(action)
        for name, a, b in zip(("obs", "reward", "terminated", "truncated"), theirs, ours,
                              strict=True):
            assert b.dtype == a.dtype and b.shape == a.shape, (step, name)
            if not np.array_equal(a, b):
                raise AssertionError(f"{env_id} step {step}: {name} differs by "
                                     f"{np.abs(a.astype(float) - b.astype(float)).max()}")
        obs = theirs[0]
        ends["terminated"] += int(theirs[2].sum())
        ends["truncated"] += int(theirs[3].sum())
        if env_id == "Acrobot-v1":  # the angle wrap never needs more passes than it makes
            assert np.abs(batched.state[:2]).max() <= np.pi
    assert ends["terminated"] >= 50, ends  # the test crossed many episode ends of each kind
    assert ends["truncated"] >= 10, ends


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_sub_env_does_not_depend_on_its_batch(env_id: str) -> None:
    """Sub-env 3 alone and in a batch of 8 (the others acting otherwise) give the same
    numbers: its resets come from its key alone."""
    batch, alone = ClassicVecEnv(env_id, N), ClassicVecEnv(env_id, 1)
    obs_b, obs_a = batch.reset(keys(N)), alone.reset(keys(N)[3:4])
    assert np.array_equal(obs_a, obs_b[3:4])
    rng = np.random.default_rng(3)
    for _ in range(2_000):
        action = policy(env_id, obs_b, rng)
        out_b = batch.step(action)
        out_a = alone.step(action[3:4])
        for a, b in zip(out_a, out_b, strict=True):
            assert np.array_equal(a, b[3:4])
        obs_b = out_b[0]


# Largest one-step difference of the torch arithmetic (used off the CPU) from gymnasium's, over
# these 20,000 states, measured on the development machine (2026-12-07): in the float64 state,
# CartPole 0, MountainCar 4e-19, Acrobot 2.2e-16 (a last-bit sin/cos/pow difference); in the
# float32 observations 0. The bounds leave room for other machines' SLEEF and C library. Over
# many steps such differences grow (Acrobot is chaotic), so off the CPU trajectories are the
# same process, not the same numbers.
TORCH_STATE, TORCH_OBS = 1e-12, 1e-6


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_torch_arithmetic_one_step_from_the_same_states(env_id: str) -> None:
    reference = ClassicVecEnv(env_id, 2_000)
    torch_env = ClassicVecEnv(env_id, 2_000, xp=torch)
    obs = reference.reset(keys(2_000))
    torch_env.reset(keys(2_000))
    rng = np.random.default_rng(4)
    worst_state = worst_obs = 0.0
    for _ in range(10):
        torch_env.state = torch.as_tensor(reference.state)
        torch_env.autoreset = torch.as_tensor(reference.autoreset)
        torch_env.elapsed = torch.as_tensor(reference.elapsed)
        torch_env.used = torch.as_tensor(reference.used)
        action = policy(env_id, obs, rng)
        ours = torch_env.step(torch.as_tensor(action))
        theirs = reference.step(action)
        for a, b in zip(theirs[1:], ours[1:], strict=True):
            assert np.array_equal(a, b.numpy())
        worst_obs = max(worst_obs, float(np.abs(theirs[0] - ours[0].numpy()).max()))
        worst_state = max(worst_state,
                          float(np.abs(reference.state - torch_env.state.numpy()).max()))
        obs = theirs[0]
    assert worst_state <= TORCH_STATE and worst_obs <= TORCH_OBS


@pytest.mark.parametrize("env_id", ["CartPole-v1", "CartPole-v0", "Acrobot-v1"])
def test_training_is_the_same_on_either_backend(env_id: str) -> None:
    """The batched envs change nothing a run records (the default, 'auto', uses them)."""
    from dqn.base.config import Config
    from dqn.core.train import train

    config = Config(env_id=env_id, device="cpu", total_steps=1_500, eval_every=500,
                    eval_episodes=2, log_every=250, learning_starts=100)
    ours = train(config, [0, 5])
    theirs = train(config.replace(env_backend="gymnasium"), [0, 5])
    assert len(ours.episodes) >= 4  # episode ends crossed, and evaluations
    for name in ("episodes", "evals", "diagnostics"):
        pd_ours, pd_theirs = getattr(ours, name), getattr(theirs, name)
        assert pd_ours.equals(pd_theirs), name


def test_the_config_knows_which_envs_are_batched() -> None:
    from dqn.base.config import BATCHED_ENVS
    assert sorted(BATCHED_ENVS) == ENV_IDS


class HostView:
    """A batched env on the device seen through host numpy arrays (actions copied to the
    device, results back), so training takes the host path with the device env's numbers."""

    def __init__(self, env: ClassicVecEnv) -> None:
        self.env = env
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space

    def reset(self, keys: np.ndarray) -> np.ndarray:
        return self.env.reset(keys).cpu().numpy()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(x.cpu().numpy() for x in self.env.step(action))

    def close(self) -> None:
        self.env.close()


@pytest.mark.parametrize("overrides", [
    {}, {"target": "hard_episodes", "target_period": 2, "clear_memory_each_episode": True},
    {"env_id": "Acrobot-v1", "eval_episodes": 3}])
def test_training_with_the_env_on_the_device_gives_the_host_paths_records(
        overrides: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Off the CPU the env's results stay on the device (tensors, records accounted there and
    copied at log intervals). The same torch env run both ways on the CPU, once through the
    device path and once seen through host arrays, must give identical records."""
    from dqn.base.config import Config
    from dqn.core import envs
    from dqn.core.train import train

    config = Config(device="cpu", total_steps=1_200, eval_every=400, eval_episodes=2,
                    log_every=200, learning_starts=100).replace(**overrides)

    def run(wrap) -> object:
        monkeypatch.setattr(envs, "make", lambda env_id, n, device, backend="auto": wrap(
            ClassicVecEnv(env_id, n, device, xp=torch)))
        return train(config, [2, 7])

    on_device = run(lambda env: env)
    through_host = run(HostView)
    assert len(on_device.episodes) >= 4
    for name in ("episodes", "evals", "diagnostics"):
        a, b = getattr(on_device, name), getattr(through_host, name)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
