"""The torch device of a run, and the process-wide torch settings that make CPU runs fast.

train() enters `cpu_settings` for its own duration and restores what it found, so a caller (a
notebook, a test) gets the fast path without its own torch settings being changed for good.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
from collections.abc import Iterator

import torch

from dqn.base import numerics


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _probe() -> str:
    """sha256 (16 hex digits) of a fixed sequence of plain torch ops of the shapes and kinds
    training uses (batched matrix products, reductions, norms, elementwise maths, the
    generator). Two machines that give the same probe add floats in the same order in these
    kernels; it reads none of the project's code, so a change to the agent cannot change it."""
    g = torch.Generator().manual_seed(12345)
    x = torch.randn(8, 32, 4, generator=g)  # (S, B, obs_dim)
    w1, w2 = torch.randn(8, 4, 64, generator=g), torch.randn(8, 64, 64, generator=g)
    w3 = torch.randn(8, 64, 256, generator=g)
    h = torch.relu(torch.baddbmm(torch.randn(8, 1, 64, generator=g), x, w1))  # (S, B, 64)
    h2 = torch.tanh(torch.bmm(h, w2))  # (S, B, 64)
    big = torch.bmm(torch.randn(8, 128, 64, generator=g), w3)  # (S, 128, 256)
    flat = torch.randn(8, 5000, generator=g)
    parts = [h2, big, h2.sum(dim=1), h2.mean(dim=(1, 2)), big.amax(dim=2),
             torch.linalg.vector_norm(flat, dim=1), flat.exp().log1p(), flat.cumsum(dim=1),
             torch.softmax(big, dim=-1), torch.addcdiv(flat, flat, flat.abs().sqrt() + 1e-8),
             (h2 @ h2.transpose(1, 2)).sum(), torch.rand(8, 100, generator=g),
             torch.randint(0, 5000, (8, 32), generator=g).float()]
    digest = hashlib.sha256()
    for t in parts:
        digest.update(t.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@functools.cache
def cpu_numerics() -> dict[str, str]:
    """How this process computes on the CPU: the machine, ATen's kernel build, the pinned
    variables (dqn.base.numerics) and the probe. Each chunk of a CPU run records it; two runs
    can only be compared bit for bit when theirs agree (dqn.store.reproduce)."""
    return {"machine": platform.machine(), "aten": torch.backends.cpu.get_cpu_capability(),
            **numerics.settings(), "probe": _probe()}


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
