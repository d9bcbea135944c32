"""Shared fixtures."""

from __future__ import annotations

import pytest
import torch

import dqn  # noqa: F401  (pins the CPU numerics, dqn.base.numerics, before torch computes)


@pytest.fixture
def single_thread_torch():
    """One intra-op thread while a test runs: the core tests' tensors are tiny, and on a busy
    machine torch's thread pool makes them an order of magnitude slower, not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
