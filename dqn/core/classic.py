"""Batched classic-control environments on the training device: CartPole-v0/v1, Acrobot-v1 and
MountainCar-v0, every seed's sub-env stepped at once with no Python loop over sub-envs.

Each step is gymnasium's own arithmetic (dqn.core.dynamics, written once against an array
module `xp`): the same float64 state, the same operations in the same order (gymnasium 1.x's
expressions, term for term), float32 observations, gymnasium's termination, truncation at the
registry's episode limit and its NEXT_STEP autoreset (the step after a terminated or truncated
one resets the sub-env, ignores its action and returns reward 0, terminated and truncated False).

- On the CPU `xp` is numpy, over the tensors' own memory (torch.from_numpy shares it, nothing is
  copied). It is also what gymnasium computes with, so every number is bit-identical to
  gymnasium's environment on this machine (tests/test_classic.py checks 10,000+ steps per
  environment). torch's own float64 sin/cos (SLEEF) differ from the C library's in the last
  bit for about 1 argument in 700, which would change the trajectories.
- On any other device `xp` is torch: the state stays on the device. Trigonometric results may
  then differ in the last bit from gymnasium's; the tests measure how much (on the CPU, by
  forcing xp = torch).

Initial states are drawn on the host exactly as dqn.core.envs.SeededVecEnv draws them (so
either backend gives the same episodes): CartPole's from (sub-env key, reset count) counters,
Acrobot's and MountainCar's from each sub-env's own gymnasium generator seeded with its key.
They are drawn ahead, BLOCK resets per sub-env at a time, into a ring on the device that the
step indexes with each sub-env's reset count; every BLOCK steps the host tops the ring up (one
read of the reset counts: no per-step host round trip on a GPU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dqn.core.dynamics import (
    CARTPOLE_HIGH,
    CARTPOLE_LOW,
    acrobot_obs,
    acrobot_step,
    cartpole_obs,
    cartpole_step,
    mountaincar_obs,
    mountaincar_step,
)
from dqn.core.seeding import mix64, unit_uniform

BLOCK = 64
"""Resets drawn per sub-env at a time; a sub-env resets at most once a step, so topping the
ring up every BLOCK steps to BLOCK resets ahead never runs it dry."""


# ---- initial states, drawn on the host as dqn.core.envs.SeededVecEnv draws them ---------------
def cartpole_resets(keys: np.ndarray, first: np.ndarray, count: int) -> np.ndarray:
    """Resets first_i .. first_i + count - 1 of each sub-env, (n, count, 4) float64: state =
    low + (high - low) * U, U from (key, 4 * reset + component) (SeededVecEnv._restart)."""
    reset = first[:, None] + np.arange(count, dtype=np.uint64)  # (n, count)
    counter = reset[..., None] * np.uint64(4) + np.arange(4, dtype=np.uint64)  # (n, count, 4)
    u = unit_uniform(mix64(keys[:, None, None], counter))
    return CARTPOLE_LOW + (CARTPOLE_HIGH - CARTPOLE_LOW) * u


def acrobot_resets(generators: list[np.random.Generator], count: int) -> np.ndarray:
    """The next `count` resets of each sub-env's generator, (n, count, 4) float64: AcrobotEnv's
    uniform(-0.1, 0.1, size=4).astype(float32), one after another."""
    return np.stack([g.uniform(-0.1, 0.1, size=(count, 4)).astype(np.float32)
                     for g in generators]).astype(np.float64)


def acrobot_reset_obs(state: np.ndarray) -> np.ndarray:
    """AcrobotEnv._get_ob of a freshly reset (float32) state: its trigonometry in float32,
    as gymnasium computes it. state (..., 4) float64 holding float32 values."""
    s = state.astype(np.float32)
    return np.stack((np.cos(s[..., 0]), np.sin(s[..., 0]), np.cos(s[..., 1]), np.sin(s[..., 1]),
                     s[..., 2], s[..., 3]), axis=-1).astype(np.float32)


def mountaincar_resets(generators: list[np.random.Generator], count: int) -> np.ndarray:
    """(n, count, 2) float64: MountainCarEnv's [uniform(-0.6, -0.4), 0] one after another."""
    position = np.stack([g.uniform(-0.6, -0.4, size=count) for g in generators])  # (n, count)
    return np.stack((position, np.zeros_like(position)), axis=-1)


def as_float32(state: np.ndarray) -> np.ndarray:
    """The observation of a reset state that is the state itself (CartPole, MountainCar)."""
    return state.astype(np.float32)


@dataclass(frozen=True)
class Kind:
    """One environment's dynamics, observation, reset distribution and reward."""

    step: Callable  # (xp, state (state_dim, n), action (n,)) -> (next state, terminated (n,))
    obs: Callable  # (xp, state) -> observations (n, obs_dim) float32
    state_dim: int
    obs_dim: int
    n_actions: int
    resets: Callable | None  # (generators, count) -> (n, count, state_dim); None: counters
    reset_obs: Callable  # reset states (..., state_dim) -> their observations, float32
    reward: Callable  # terminated (n,) -> a live step's reward
    reward_dtype: type  # what gymnasium returns


def _cartpole(terminated: Any) -> float:
    return 1.0  # every step the pole stays up, the terminating one included


def _acrobot(terminated: Any) -> Any:
    return -1.0 + terminated  # -1 a step, 0 on reaching the goal


def _mountaincar(terminated: Any) -> float:
    return -1.0


CARTPOLE = Kind(cartpole_step, cartpole_obs, 4, 4, 2, None, as_float32, _cartpole, np.float32)
KINDS: dict[str, Kind] = {
    "CartPole-v1": CARTPOLE,
    "CartPole-v0": CARTPOLE,
    "Acrobot-v1": Kind(acrobot_step, acrobot_obs, 4, 6, 3, acrobot_resets, acrobot_reset_obs,
                       _acrobot, np.float64),
    "MountainCar-v0": Kind(mountaincar_step, mountaincar_obs, 2, 2, 3, mountaincar_resets,
                           as_float32, _mountaincar, np.float64),
}
"""The environments with a batched version here."""


class ClassicVecEnv:
    """num_envs batched sub-envs of one classic-control environment, with SeededVecEnv's
    interface: `reset(keys)` gives sub-env i its key; `step(action)` returns (obs, reward,
    terminated, truncated), each with leading dim num_envs, as numpy arrays on the CPU and as
    tensors on other devices.

    xp: the array module (default numpy on the CPU, torch elsewhere; tests force torch on the
    CPU to measure its trigonometry's difference)."""

    def __init__(self, env_id: str, num_envs: int, device: torch.device | str = "cpu",
                 xp: ModuleType | None = None) -> None:
        if env_id not in KINDS:
            raise ValueError(f"no batched version of {env_id}; have {sorted(KINDS)}")
        self.env_id, self.kind, self.num_envs = env_id, KINDS[env_id], num_envs
        self.device = torch.device(device)
        self.xp = xp or (np if self.device.type == "cpu" else torch)
        self.limit = int(gym.spec(env_id).max_episode_steps)
        probe = gym.make(env_id)
        self.single_observation_space = probe.observation_space
        probe.close()
        self.single_action_space = gym.spaces.Discrete(self.kind.n_actions)
        self.rows = self._array(np.arange(num_envs))  # (n,) for indexing the reset ring

    def _array(self, a: np.ndarray) -> Any:
        return a if self.xp is np else torch.as_tensor(a, device=self.device)

    def reset(self, keys: np.ndarray) -> Any:
        """Start every sub-env's first episode from its key, (num_envs,) uint64; returns the
        observations (num_envs, obs_dim) float32."""
        n, k = self.num_envs, self.kind
        self.keys = np.asarray(keys, dtype=np.uint64).copy()  # (n,)
        self.generators = None if k.resets is None else [
            np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(key))))
            for key in self.keys]  # gymnasium's seeding.np_random(key) per sub-env
        self.ring_state = self._array(np.zeros((n, 2 * BLOCK, k.state_dim)))
        self.ring_obs = self._array(np.zeros((n, 2 * BLOCK, k.obs_dim), dtype=np.float32))
        self.filled = np.zeros(n, dtype=np.int64)  # (n,) resets drawn so far
        self._top_up(np.arange(n), 2 * BLOCK)
        self.used = self._array(np.ones(n, dtype=np.int64))  # (n,) resets consumed
        self.since_top_up = 0
        self.state = self.ring_state[:, 0].T.copy() if self.xp is np else (
            self.ring_state[:, 0].T.clone())  # (state_dim, n) float64
        self.elapsed = self._array(np.zeros(n, dtype=np.int64))  # (n,) steps this episode
        self.autoreset = self._array(np.zeros(n, dtype=bool))  # (n,) next step resets
        return self._contiguous(self.ring_obs[:, 0])

    def _top_up(self, idx: np.ndarray, count: int) -> None:
        """Draw the next `count` resets of sub-envs idx into their ring slots."""
        k = self.kind
        if k.resets is None:
            states = cartpole_resets(self.keys[idx], self.filled[idx].astype(np.uint64), count)
        else:
            states = k.resets([self.generators[i] for i in idx], count)
        obs = k.reset_obs(states)
        slots = (self.filled[idx, None] + np.arange(count)) % (2 * BLOCK)  # (len(idx), count)
        rows = np.broadcast_to(idx[:, None], slots.shape)
        if self.xp is np:
            self.ring_state[rows, slots] = states
            self.ring_obs[rows, slots] = obs
        else:
            r = torch.as_tensor(np.ascontiguousarray(rows), device=self.device)
            s = torch.as_tensor(slots, device=self.device)
            self.ring_state[r, s] = torch.as_tensor(states, device=self.device)
            self.ring_obs[r, s] = torch.as_tensor(obs, device=self.device)
        self.filled[idx] += count

    def _contiguous(self, a: Any) -> Any:
        return np.ascontiguousarray(a) if self.xp is np else a.contiguous()

    def step(self, action: Any) -> tuple[Any, Any, Any, Any]:
        """(obs, reward, terminated, truncated) after one step of every sub-env; sub-envs whose
        previous step ended their episode start their next one instead (NEXT_STEP)."""
        xp, k, ar = self.xp, self.kind, self.autoreset
        if xp is np:
            action = np.asarray(action)
        else:
            action = torch.as_tensor(action, device=self.device)
        state, terminated = k.step(xp, self.state, action)  # (state_dim, n), (n,)
        obs = k.obs(xp, state)  # (n, obs_dim)
        self.elapsed = self.elapsed + 1
        if xp is not np or ar.any():  # the resetting sub-envs take their next initial state
            slot = self.used % (2 * BLOCK)  # (n,)
            state = xp.where(ar[None, :], self.ring_state[self.rows, slot].T, state)
            obs = xp.where(ar[:, None], self.ring_obs[self.rows, slot], obs)
            self.used = self.used + ar
            self.elapsed = xp.where(ar, 0, self.elapsed)
            terminated = terminated & ~ar
        truncated = (self.elapsed >= self.limit) & ~ar
        reward = xp.where(ar, 0.0, k.reward(terminated))
        reward = reward.astype(k.reward_dtype) if xp is np else reward.to(
            torch.float32 if k.reward_dtype is np.float32 else torch.float64)
        self.state, self.autoreset = state, terminated | truncated
        self.since_top_up += 1
        if self.since_top_up == BLOCK:  # one host read of the reset counts per BLOCK steps
            self.since_top_up = 0
            used = self.used if xp is np else self.used.cpu().numpy()
            short = np.flatnonzero(self.filled < used + BLOCK)
            if len(short):
                self._top_up(short, BLOCK)
        return self._contiguous(obs), reward, terminated, truncated

    def close(self) -> None:
        """Nothing to release (SeededVecEnv's interface)."""
