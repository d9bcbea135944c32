"""Mapping a function over items in worker processes, one per CPU core by default."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def process_map(fn: Callable[[Any], Any], items: Sequence[Any],
                jobs: int | None = None) -> Iterator[Any]:
    """fn over items, results in the order of items, `jobs` processes at once (default one
    per CPU core; in this process when one is enough). Workers are spawned, not forked, so
    each starts clean of this process's state (threads, matplotlib, open files)."""
    jobs = max(1, min(len(items), jobs or os.cpu_count() or 1))
    if jobs == 1:
        yield from map(fn, items)
        return
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(fn, items)
