"""What the project knows about each environment, in one place.

gymnasium's registry already holds each environment's episode limit (`max_episode_steps`) and
solved threshold (`reward_threshold`), so they are read from it rather than restated. The one
fact the registry lacks is the range of an episode's return (the range returns are normalised
by): for the classic-control environments the range of a single step's reward times the episode
limit; for LunarLander, whose per-step reward has no useful bound, a range set from measurement
(RETURN_RANGE). Those two tables are the environments the project knows (ENV_IDS).

Any other gymnasium environment with a flat Box observation and Discrete actions runs too: a
registered id ("Id-v0", or "module:Id-v0", which imports the module that registers it) or an
entry point ("module:Class"), with the study file's return_range (`resolve`, `learn`).
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec

# (low, high) of one step's reward: CartPole pays +1 for every step the pole stays up, Acrobot
# pays -1 for every step before the swing-up and 0 at it.
STEP_REWARD_RANGE: dict[str, tuple[float, float]] = {
    "CartPole-v1": (0.0, 1.0),
    "CartPole-v0": (0.0, 1.0),
    "Acrobot-v1": (-1.0, 0.0),
    "MountainCar-v0": (-1.0, 0.0),  # -1 for every step before the car reaches the flag
}
# (low, high) of an episode's return where no step-reward bound gives one. LunarLander-v3
# (1,000-step episodes, solved at 200): low -500 is about the worst of 400 random-policy
# episodes (measured 2026-11-21 with 50 seeded envs: min -517, 1st percentile -430, median
# -144); a policy that fires the main engine throughout can go far lower (median -636), so
# normalised scores below 0 happen. High 300 is about the best a landing can earn: the shaping
# rewards sum to the potential gained from the start (about 140 for the distance, more for the
# speed) plus 10 per leg in contact, and coming to rest adds 100, less the fuel spent.
RETURN_RANGE: dict[str, tuple[float, float]] = {
    "LunarLander-v3": (-500.0, 300.0),
}
ENV_IDS = (*STEP_REWARD_RANGE, *RETURN_RANGE)
# Environments whose maximum return good policies reach, so that good seeds tie there: CartPole
# pays 1 a step up to the episode limit. (Acrobot's maximum, 0, would need a swing-up in no
# steps; LunarLander's range is measured, not a bound.)
CAPPED = frozenset({"CartPole-v1", "CartPole-v0"})


@dataclass(frozen=True)
class EnvFacts:
    """Episode limit, solved threshold and return range of one environment."""

    env_id: str
    episode_limit: int | None
    """Steps after which an episode is truncated (gymnasium's max_episode_steps; None: never)."""
    threshold: float
    """Return at which the environment counts as solved (gymnasium's reward_threshold; NaN
    where the registry has none: then no seed counts as solved)."""
    min_return: float
    """Lowest return: episode_limit x the lowest step reward, or RETURN_RANGE's low."""
    max_return: float
    """Highest return: episode_limit x the highest step reward, or RETURN_RANGE's high."""
    capped: bool
    """Whether good policies reach max_return, so good seeds' final scores tie there."""

    @property
    def solvable(self) -> bool:
        """Whether the environment has a solved threshold."""
        return not math.isnan(self.threshold)


def _read(env_id: str) -> EnvFacts:
    spec = gym.spec(env_id)
    limit = int(spec.max_episode_steps)
    if env_id in RETURN_RANGE:
        low, high = RETURN_RANGE[env_id]
    else:
        low, high = (limit * r for r in STEP_REWARD_RANGE[env_id])
    return EnvFacts(env_id, limit, float(spec.reward_threshold), low, high,
                    env_id in CAPPED)


# Reading a spec creates no environment, so this costs nothing at import.
ENVS: dict[str, EnvFacts] = {env_id: _read(env_id) for env_id in ENV_IDS}


_LEARNED: dict[str, EnvFacts] = {}  # environments met in study files, with their return_range


def known(env_id: str | None) -> EnvFacts | None:
    """The facts of an environment: one the project knows, or one `learn`t from a study's
    return_range; None for another (or a missing) id."""
    return ENVS.get(env_id or "") or _LEARNED.get(env_id or "")


@functools.cache
def resolve(env_id: str) -> EnvSpec | None:
    """gymnasium's spec of env_id: a registered id (a "module:" prefix imports the module that
    registers it), or else a "module:Class" entry point; None when it is neither."""
    module, _, name = env_id.rpartition(":")
    if module:  # import it: it registers its ids, or holds the class
        try:
            entry = getattr(importlib.import_module(module), name, None)
        except ImportError:
            return None
        if isinstance(entry, type) and issubclass(entry, gym.Env):
            return EnvSpec(id=name, entry_point=env_id)
    try:  # exactly: gymnasium would take "CartPole" for its latest version, with a warning
        spec = gym.spec(name)
    except gym.error.Error:
        return None
    return spec if spec.id == name else None


def learn(env_id: str, return_range: tuple[float, float] | list[float]) -> EnvFacts:
    """Record the facts of an environment the project does not know, from its gymnasium spec
    and a study's return_range ([low, high] of an episode's return); ValueError when it is
    not an environment or was learnt with another range."""
    spec = resolve(env_id)
    if spec is None:
        raise ValueError(f"{env_id!r} is neither a registered gymnasium id nor a "
                         "module:Class entry point")
    low, high = (float(v) for v in return_range)
    threshold = math.nan if spec.reward_threshold is None else float(spec.reward_threshold)
    facts = EnvFacts(env_id, spec.max_episode_steps, threshold, low, high, capped=False)
    if _LEARNED.setdefault(env_id, facts) != facts:
        raise ValueError(f"{env_id}: return_range [{low:g}, {high:g}] differs from the "
                         f"[{_LEARNED[env_id].min_return:g}, {_LEARNED[env_id].max_return:g}] "
                         "another study gave it")
    return facts
