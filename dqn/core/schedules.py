"""Exploration schedules and the prioritized-replay beta, as pure functions of time."""

from __future__ import annotations

import math

import torch

from dqn.base.config import Config


def linear(t: float, start: float, end: float, duration: float) -> float:
    """start -> end linearly over `duration`, then flat at end."""
    return end + (start - end) * max(0.0, 1.0 - t / duration)


def exponential(t: torch.Tensor | float, start: float, end: float, decay: float):
    """end + (start - end) * exp(-t / decay): the classic notebooks' per-step/per-episode decay."""
    if isinstance(t, torch.Tensor):
        return end + (start - end) * torch.exp(-t / decay)
    return end + (start - end) * math.exp(-t / decay)


def epsilon(config: Config, step: int, episodes: torch.Tensor) -> torch.Tensor:
    """Each seed's exploration rate (S,) at env step `step` after `episodes` (S,) finished episodes.

    Step-based schedules give every seed the same value (seeds run in lockstep); the per-episode
    schedule differs per seed.
    """
    c = config
    if c.noisy:  # noisy networks explore by their noise
        return torch.zeros(episodes.shape, device=episodes.device)
    if c.epsilon_schedule == "exp_episode":
        return exponential(episodes.float(), c.epsilon_start, c.epsilon_end, c.epsilon_decay)
    if c.epsilon_schedule == "linear":
        value = linear(step, c.epsilon_start, c.epsilon_end, c.epsilon_decay)
    else:
        value = exponential(step, c.epsilon_start, c.epsilon_end, c.epsilon_decay)
    return torch.full(episodes.shape, value, device=episodes.device)


def priority_beta(config: Config, step: int) -> float:
    """Prioritized replay's importance-sampling exponent at env step `step`: linear from
    priority_beta_start at step 0 to 1 at total_steps (Schaul et al. 2016)."""
    return linear(step, config.priority_beta_start, 1.0, config.total_steps)
