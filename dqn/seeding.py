"""The seeding of every random stream of a run.

Each seed's network init has its own generator; the per-step streams are one generator per name
for the whole batch (a per-seed generator would need a Python loop over seeds every step),
seeded from the full seed list and the stream's name.
"""

from __future__ import annotations

import numpy as np
import torch

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
