"""Every random number of a run, each seed's from that seed alone (README "Seeds").

A seed's numbers depend only on (its seed, the stream's name, a counter), never on which other
seeds share its batch, so a seed gives the same records alone, in any batch and in any chunk:

- "init": the seed's network weights, from its own torch generator (dqn.core.networks.init_params).
- "explore", "action", "store", "replay": per-step streams. Each seed has its own CPU torch
  generator per stream; `Stream` draws BLOCK steps' numbers for every seed at once (the only
  loop over seeds, once per block) and hands out one step's (S, ...) slice at a time. The
  numbers are made on the CPU and copied to the run's device, so they are the same on any
  device. The k-th draw of a stream is its generator's k-th block entry: k counts env steps
  (explore, action, store) or gradient steps (replay), which are the same for every seed.
- "noise_act", "noise_learn": a noisy network's noise (dqn.core.noisy), per env step and per
  gradient step.
- "env", "eval": environment reset states (dqn.core.envs), from per-sub-env keys: a key per seed
  for training, a key per (seed, evaluation, episode) for evaluation.

Keys come from numpy's SeedSequence(seed, spawn_key=(stream, ...)), the standard way to derive
independent streams from one integer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

STREAMS = ("init", "explore", "replay", "store", "env", "eval", "action", "noise_act",
           "noise_learn")

BLOCK = 64
"""Draws per seed made at once by a Stream. A constant: a seed's k-th draw must not depend on
how many seeds share the batch (it does not depend on BLOCK either, but keeping it fixed means
that never needs to be relied on)."""

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def stream_seed(seed: int, name: str, *extra: int) -> int:
    """A 63-bit seed for one seed's named stream (extra: further counters, e.g. an episode)."""
    key = [STREAMS.index(name), *extra]
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0]
               >> np.uint64(1))


def keys(seeds: list[int], name: str, *extra: int) -> np.ndarray:
    """stream_seed of every seed, (S,) uint64 (a loop over seeds: call it once, not per step)."""
    return np.array([stream_seed(s, name, *extra) for s in seeds], dtype=np.uint64)


def mix64(key: np.ndarray, counter: np.ndarray | int) -> np.ndarray:
    """The counter-th output of a SplitMix64 generator seeded with `key`, elementwise (uint64).

    z = key + (counter + 1) * 0x9E3779B97F4A7C15, then SplitMix64's finaliser (Steele, Lea and
    Flood 2014): z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
    z ^= z >> 31. numpy's uint64 arithmetic wraps modulo 2**64, as the algorithm needs.
    """
    with np.errstate(over="ignore"):
        z = np.asarray(key, dtype=np.uint64) + (np.asarray(counter, dtype=np.uint64)
                                                + np.uint64(1)) * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def unit_uniform(bits: np.ndarray) -> np.ndarray:
    """Doubles uniform on [0, 1) from uint64 bits: the top 53 bits times 2**-53 (what numpy's
    Generator.random does with one 64-bit output)."""
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


class Stream:
    """One named per-step stream for S seeds: `next()` is the next (S, ...) draw on `device`.

    draw(generator, n) makes n consecutive draws of one seed, shape (n, ...); a seed's draws
    depend only on its own generator, seeded with stream_seed(seed, name).
    """

    def __init__(self, seeds: list[int], name: str, device: torch.device,
                 draw: Callable[[torch.Generator, int], torch.Tensor]) -> None:
        self.generators = [torch.Generator().manual_seed(stream_seed(s, name)) for s in seeds]
        self.device, self.draw = device, draw
        self.block: torch.Tensor | None = None  # (BLOCK, S, ...)
        self.t = BLOCK

    def next(self) -> torch.Tensor:
        """The next draw of every seed, (S, ...)."""
        if self.t == BLOCK:
            self.block = torch.stack([self.draw(g, BLOCK) for g in self.generators], dim=1).to(
                self.device)  # (BLOCK, S, ...)
            self.t = 0
        self.t += 1
        return self.block[self.t - 1]


def uniform(*shape: int) -> Callable[[torch.Generator, int], torch.Tensor]:
    """Draws uniform on [0, 1), each of shape `shape` (torch.rand, float32)."""
    return lambda g, n: torch.rand(n, *shape, generator=g)


def normal(*shape: int) -> Callable[[torch.Generator, int], torch.Tensor]:
    """Draws standard normal, each of shape `shape` (torch.randn, float32)."""
    return lambda g, n: torch.randn(n, *shape, generator=g)


def integers(high: int) -> Callable[[torch.Generator, int], torch.Tensor]:
    """Draws uniform on {0, ..., high - 1} (torch.randint, int64)."""
    return lambda g, n: torch.randint(high, (n,), generator=g)
