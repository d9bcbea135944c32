"""The torch device of a run, and the process-wide torch settings that make CPU runs fast.

train() enters `cpu_settings` for its own duration and restores what it found, so a caller (a
notebook, a test) gets the fast path without its own torch settings being changed for good.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Iterator

import torch


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cpu_threads() -> int:
    """Torch CPU threads for a run: $DQN_THREADS, else 1.

    One thread is the default because the tensors are small: on 2 cores a second intra-op
    thread gained about 10% at S=20 when idle and lost up to 5x when another process competed
    for the cores (measured with `make bench`).
    """
    return int(os.environ.get("DQN_THREADS", "1"))


def flushing_denormals() -> bool:
    """Whether torch currently flushes denormal floats to zero. torch has a setter but no
    getter, so this probes it: a denormal times one is zero exactly when flushing is on."""
    return bool((torch.tensor([1e-40]) * 1.0).item() == 0.0)


@contextlib.contextmanager
def cpu_settings(device: torch.device) -> Iterator[None]:
    """For a CPU run: cpu_threads() intra-op threads and denormals flushed to zero, both
    restored on exit. Adam's second moments of tiny gradients fall into denormal floats, which
    made its elementwise ops 5-7x slower on CPU; flushing them changes nothing that matters.
    Other devices run unchanged."""
    if device.type != "cpu":
        yield
        return
    threads, flushing = torch.get_num_threads(), flushing_denormals()
    torch.set_num_threads(cpu_threads())
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(flushing)
        torch.set_num_threads(threads)


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:
    """glibc's malloc_trim, or None where the C library has none (macOS, musl)."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


def release_freed_memory() -> bool:
    """Give the pages of freed C-heap memory back to the operating system (glibc's
    malloc_trim(0)); returns whether it could (False without glibc).

    Why: torch's CPU tensors are malloc'ed, and once glibc's sliding mmap threshold has risen
    the per-update tensors (up to S x B x hidden floats) come from the heap. Freed but not
    returned, that heap grew without bound in some runs: CleanRL's recipe on LunarLander-v3
    (MSE, 120-84 ReLU, batch 128) held 24 GB after 4 units; measured on 20 seeds training every
    step, 1.1 GB after 1,500 updates against 0.4 GB with a trim every 500 steps, in the same
    time. The numbers trained are not touched.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def device_problem(name: str) -> str | None:
    """Why the device called `name` cannot run here, or None when it can."""
    device = resolve_device(name)
    if device.type != "cuda":
        return None
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        return f"CUDA is not available on this machine (torch {torch.__version__}, {build})"
    index = device.index or 0
    if index >= torch.cuda.device_count():
        return f"there is no CUDA device {index} (this machine has {torch.cuda.device_count()})"
    return None
