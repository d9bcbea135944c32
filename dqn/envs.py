"""Vector environments with one sub-env per seed, and the seeding of every random stream."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

# Named random streams. Each seed's network init has its own generator; the per-step streams
# are one generator per name for the whole batch (a per-seed generator would need a Python
# loop over seeds every step), seeded from the full seed list and the stream's name.
STREAMS = ("init", "explore", "replay", "store", "env", "eval")


def stream_seed(seeds: list[int] | int, name: str, *extra: int) -> int:
    """A 63-bit seed for the named stream, derived from the seed(s) with numpy's SeedSequence."""
    entropy = [seeds] if isinstance(seeds, int) else list(seeds)
    key = [STREAMS.index(name), *extra]
    return int(np.random.SeedSequence(entropy, spawn_key=key).generate_state(1, np.uint64)[0]
               >> np.uint64(1))


def generator(seeds: list[int], name: str, device: torch.device) -> torch.Generator:
    """A torch generator on `device` for one named per-step stream."""
    return torch.Generator(device=device).manual_seed(stream_seed(seeds, name))


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
