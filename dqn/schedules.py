"""Exploration schedules as pure functions of time."""

from __future__ import annotations

import math

import torch

from dqn.config import Config


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
    if c.epsilon_schedule == "exp_episode":
        return exponential(episodes.float(), c.epsilon_start, c.epsilon_end, c.epsilon_decay)
    if c.epsilon_schedule == "linear":
        value = linear(step, c.epsilon_start, c.epsilon_end, c.epsilon_decay)
    else:
        value = exponential(step, c.epsilon_start, c.epsilon_end, c.epsilon_decay)
    return torch.full(episodes.shape, value, device=episodes.device)
