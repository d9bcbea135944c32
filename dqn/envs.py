"""Vector environments with one sub-env per seed (the seeds of their resets: dqn.seeding)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


def make_vec_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """One vector env with num_envs sub-envs: the env's own vectorised version where it has one
    (CartPole), a synchronous vector env otherwise. Autoreset is gymnasium's default NEXT_STEP:
    the step after a terminated/truncated one resets the sub-env and ignores its action."""
    spec = gym.spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    if env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP) != (
        gym.vector.AutoresetMode.NEXT_STEP
    ):
        raise RuntimeError(f"{env_id}: expected NEXT_STEP autoreset")
    return env


def reset(env: gym.vector.VectorEnv, seed: int) -> np.ndarray:
    """Reset with one integer seed (vector entry points take an int, sync envs a list)."""
    if isinstance(env, gym.vector.SyncVectorEnv):
        obs, _ = env.reset(seed=[seed + i for i in range(env.num_envs)])
    else:
        obs, _ = env.reset(seed=seed)
    return obs


def spaces(env: gym.vector.VectorEnv) -> tuple[int, int]:
    """(obs_dim, n_actions) of a vector env with a flat Box observation and Discrete actions."""
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if not isinstance(act_space, gym.spaces.Discrete) or len(obs_space.shape) != 1:
        raise ValueError("DQN here needs flat observations and discrete actions")
    return int(obs_space.shape[0]), int(act_space.n)


def dims(env_id: str) -> tuple[int, int, bool]:
    """(obs_dim, n_actions, has its own vectorised version) of an environment, without a run."""
    env = gym.make(env_id)
    try:
        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(act_space, gym.spaces.Discrete) or len(obs_space.shape) != 1:
            raise ValueError("DQN here needs flat observations and discrete actions")
        return int(obs_space.shape[0]), int(act_space.n), gym.spec(env_id).vector_entry_point \
            is not None
    finally:
        env.close()
