"""What the project knows about each environment it supports, in one place.

gymnasium's registry already holds each environment's episode limit (`max_episode_steps`) and
solved threshold (`reward_threshold`), so they are read from it rather than restated. The one
fact the registry lacks is the range of a single step's reward, which with the episode limit
bounds an episode's return (the range returns are normalised by). That table is also the list of
supported environments.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

# (low, high) of one step's reward: CartPole pays +1 for every step the pole stays up, Acrobot
# pays -1 for every step before the swing-up and 0 at it.
STEP_REWARD_RANGE: dict[str, tuple[float, float]] = {
    "CartPole-v1": (0.0, 1.0),
    "CartPole-v0": (0.0, 1.0),
    "Acrobot-v1": (-1.0, 0.0),
}
ENV_IDS = tuple(STEP_REWARD_RANGE)


@dataclass(frozen=True)
class EnvFacts:
    """Episode limit, solved threshold and return range of one environment."""

    env_id: str
    episode_limit: int
    """Steps after which an episode is truncated (gymnasium's max_episode_steps)."""
    threshold: float
    """Return at which the environment counts as solved (gymnasium's reward_threshold)."""
    min_return: float
    """Lowest possible return: episode_limit x the lowest step reward."""
    max_return: float
    """Highest possible return: episode_limit x the highest step reward."""


def _read(env_id: str) -> EnvFacts:
    spec = gym.spec(env_id)
    low, high = STEP_REWARD_RANGE[env_id]
    limit = int(spec.max_episode_steps)
    return EnvFacts(env_id, limit, float(spec.reward_threshold), limit * low, limit * high)


# Reading a spec creates no environment, so this costs nothing at import.
ENVS: dict[str, EnvFacts] = {env_id: _read(env_id) for env_id in ENV_IDS}


def known(env_id: str | None) -> EnvFacts | None:
    """The facts of a supported environment, None for an unknown (or missing) id."""
    return ENVS.get(env_id or "")
