"""Vector environments with one sub-env per seed, each sub-env's resets drawn from its own key.

gymnasium's CartPoleVectorEnv draws every sub-env's reset state from one shared generator, so a
sub-env's episodes would depend on when the other sub-envs' episodes end. `SeededVecEnv` gives
each sub-env i its own key and draws its n-th initial state (the first reset is n = 0, each
autoreset the next n) from (key_i, n) alone, with the env's own distribution. Synchronous
vector envs (Acrobot) already hold one generator per sub-env: seeding each with its key makes
its resets, autoresets included, a function of that key alone.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

from dqn.base import env_facts
from dqn.core.classic import KINDS, ClassicVecEnv
from dqn.core.seeding import mix64, unit_uniform


def vectorised(env_id: str) -> bool:
    """Whether the env runs as its own vectorised version (CartPole's CartPoleVectorEnv, whose
    resets SeededVecEnv draws per sub-env) rather than as a synchronous vector env."""
    entry = _spec(env_id).vector_entry_point
    return entry == f"{CartPoleVectorEnv.__module__}:CartPoleVectorEnv"


class SeededVecEnv:
    """num_envs sub-envs (autoreset NEXT_STEP: the step after a terminated/truncated one resets
    the sub-env and ignores its action); `reset(keys)` gives each sub-env its key."""

    def __init__(self, env_id: str, num_envs: int) -> None:
        own = vectorised(env_id)
        self.env_id = env_id
        self.env = gym.make_vec(_spec(env_id), num_envs=num_envs,
                                vectorization_mode="vector_entry_point" if own else "sync")
        if self.env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP) != (
            gym.vector.AutoresetMode.NEXT_STEP
        ):
            raise RuntimeError(f"{env_id}: expected NEXT_STEP autoreset")
        self.num_envs = num_envs
        self.cartpole = self.env.unwrapped if own else None
        self.keys = np.zeros(num_envs, dtype=np.uint64)  # (num_envs,)
        self.episode = np.zeros(num_envs, dtype=np.uint64)  # (num_envs,) resets since reset()
        self.autoreset = np.zeros(num_envs, dtype=bool)  # (num_envs,) next step resets

    def reset(self, keys: np.ndarray) -> np.ndarray:
        """Start every sub-env's first episode from its key, (num_envs,) uint64; returns the
        observations (num_envs, obs_dim)."""
        self.keys = np.asarray(keys, dtype=np.uint64).copy()
        self.episode[:] = 0
        self.autoreset[:] = False
        if self.cartpole is None:  # each sub-env's own generator, seeded with its key
            obs, _ = self.env.reset(seed=[int(k) for k in self.keys])
            return obs
        obs, _ = self.env.reset()
        return self._restart(obs, np.arange(self.num_envs))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(obs, reward, terminated, truncated), each with leading dim num_envs."""
        obs, reward, terminated, truncated, _ = self.env.step(action)
        if self.cartpole is not None and self.autoreset.any():
            obs = self._restart(obs, np.flatnonzero(self.autoreset))
        self.autoreset = terminated | truncated
        return obs, reward, terminated, truncated

    def _restart(self, obs: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Replace the initial states CartPole drew for sub-envs idx with each one's own:
        state = low + (high - low) * U, U uniform on [0, 1) from (key, 4 * episode + component),
        the same uniform distribution as CartPole's np_random.uniform(low, high)."""
        env = self.cartpole
        counter = self.episode[idx, None] * np.uint64(4) + np.arange(4, dtype=np.uint64)
        u = unit_uniform(mix64(self.keys[idx, None], counter))  # (n, 4)
        state = env.low + (env.high - env.low) * u  # (n, 4) float64, as CartPole keeps it
        env.state[:, idx] = state.T
        self.episode[idx] += np.uint64(1)
        obs[idx] = state.astype(np.float32)
        return obs

    @property
    def single_observation_space(self) -> gym.Space:
        return self.env.single_observation_space

    @property
    def single_action_space(self) -> gym.Space:
        return self.env.single_action_space

    def close(self) -> None:
        self.env.close()


VecEnv = SeededVecEnv | ClassicVecEnv


def make(env_id: str, num_envs: int, device: torch.device, backend: str = "auto") -> VecEnv:
    """num_envs seeded sub-envs of env_id: the batched version on `device` (dqn.core.classic)
    unless backend is 'gymnasium' or env_id has none ('auto'), else gymnasium's. Both give the
    same numbers on the CPU."""
    if backend == "gymnasium" or (backend == "auto" and env_id not in KINDS):
        return SeededVecEnv(env_id, num_envs)
    if env_id not in KINDS:
        raise ValueError(f"env_backend 'batched': no batched version of {env_id}")
    return ClassicVecEnv(env_id, num_envs, device)


def on_host(env: VecEnv) -> bool:
    """Whether the env's results are host (numpy) arrays: gymnasium's, or batched on the
    CPU; else they are tensors on the device."""
    return not isinstance(env, ClassicVecEnv) or env.xp is np


def _spec(env_id: str) -> gym.envs.registration.EnvSpec:
    spec = env_facts.resolve(env_id)
    if spec is None:  # Config rejects such ids: this is a caller that skipped it
        raise ValueError(f"key 'env_id': {env_id!r} is not a gymnasium environment")
    return spec


def _check_spaces(env_id: str, obs_space: gym.Space, act_space: gym.Space) -> tuple[int, int]:
    """(obs_dim, n_actions); ValueError naming the env unless a flat Box and Discrete."""
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1
            and isinstance(act_space, gym.spaces.Discrete)):
        raise ValueError(f"key 'env_id': {env_id!r} has observations {obs_space} and actions "
                         f"{act_space}; DQN here needs a flat Box and Discrete actions")
    return int(obs_space.shape[0]), int(act_space.n)


def spaces(env: VecEnv) -> tuple[int, int]:
    """(obs_dim, n_actions) of a vector env with a flat Box observation and Discrete actions."""
    return _check_spaces(getattr(env, "env_id", "the environment"),
                         env.single_observation_space, env.single_action_space)


def dims(env_id: str) -> tuple[int, int, bool]:
    """(obs_dim, n_actions, has its own vectorised version) of an environment, without a run;
    ValueError naming it when DQN cannot run on it."""
    env = gym.make(_spec(env_id))
    try:
        return (*_check_spaces(env_id, env.observation_space, env.action_space),
                vectorised(env_id))
    finally:
        env.close()
