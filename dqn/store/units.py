"""Units of work: one variant's chunk of seeds, and what training it produced.

A unit is the smallest piece of a study that trains on its own: `dqn.core.train.train(config,
chunk_seeds)`, all of the chunk's seeds batched on one device. The plan makes units, an
executor trains them, the store records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dqn.base.config import Config, is_positive_int

if TYPE_CHECKING:  # records imports torch; the store and the analysis never do
    from dqn.core.records import Records


@dataclass(frozen=True)
class Unit:
    """One variant's chunk of seeds."""

    variant: str
    config: Config
    seeds: tuple[int, ...]
    index: int  # 0-based chunk number within the variant
    chunks: int  # how many chunks the variant has

    @property
    def name(self) -> str:
        return unit_name(self.variant, self.seeds)


def unit_name(variant: str, seeds: Sequence[int]) -> str:
    """`variant[seeds 0-9]`: how logs, failure reports and the store name a unit."""
    return f"{variant}[seeds {seeds_label(seeds)}]"


@dataclass
class UnitResult:
    """What training one unit produced, plus where and with what software it ran."""

    records: Records
    device: str
    host: str
    versions: dict[str, str]
    cpu_numerics: dict[str, str] | None = None
    """How the CPU computed (dqn.core.device.cpu_numerics); None on other devices."""


def seeds_label(seeds: Sequence[int]) -> str:
    """'3', '0-9' for a contiguous run, else a comma-separated list."""
    seeds = list(seeds)
    if len(seeds) == 1:
        return str(seeds[0])
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def split_seeds(seeds: Sequence[int], chunk: int | None) -> list[tuple[int, ...]]:
    """Consecutive chunks of at most `chunk` seeds (None: one chunk holding every seed)."""
    if chunk is not None and not is_positive_int(chunk):
        raise ValueError(f"seed_chunk: {chunk!r} must be a positive integer")
    size = len(seeds) if chunk is None else chunk
    return [tuple(seeds[i:i + size]) for i in range(0, len(seeds), size)]
