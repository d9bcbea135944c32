"""CPU numerics that are the same on every x86-64 machine with AVX2.

torch picks its CPU kernels by what the processor offers: ATen's vectorised kernels (sums,
norms, elementwise maths) come in AVX2 and AVX512 builds, and MKL's matrix products take a
code path per processor. Different paths add floats in different orders, so the same config and
seed gave records that differed in the last bit between two machines (measured: the committed
baseline, trained elsewhere, first differs from a run here at seed 0, step 500, grad_norm
7.41544 against 7.4154396), and from there the trajectories drift apart. Pinning both to their
AVX2 paths makes training bit-identical across such machines (checked here by switching MKL's
instruction set: AVX2, AVX512 and SSE4.2 give the same rows), so committed results can be
reproduced exactly anywhere (tests/learning, docs/testing.md).

`pin()` sets the two variables unless the caller already set them; it must run before torch
computes anything (dqn/__init__.py calls it first). What a run actually used is recorded per
chunk (dqn.core.device.cpu_numerics). Cost measured with 20 seeds: none at the default 64x64
network; 1.27x at 256x256 with batches of 128 (MKL's AVX512 path is faster there).
"""

from __future__ import annotations

import os

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
"""ATen's kernel build and MKL's conditional numerical reproducibility mode."""


def pin() -> None:
    """Pin the CPU code paths (PINNED) unless the environment already chose them."""
    for key, value in PINNED.items():
        os.environ.setdefault(key, value)


def settings() -> dict[str, str]:
    """The pinned variables as this process has them ('' when unset)."""
    return {key: os.environ.get(key, "") for key in PINNED}
