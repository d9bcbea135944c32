"""dqn.device: train() runs CPU work with one thread and denormals flushed, and leaves the
caller's torch settings as it found them."""

from __future__ import annotations

import pytest
import torch

from dqn.config import from_dict
from dqn.device import cpu_settings, flushing_denormals, resolve_device
from dqn.train import train

TINY = {"total_steps": 120, "learning_starts": 50, "eval_every": 120, "eval_episodes": 1,
        "log_every": 60, "buffer_size": 120, "batch_size": 8, "hidden": [8], "device": "cpu"}


@pytest.fixture
def restore_torch_settings():
    threads, flushing = torch.get_num_threads(), flushing_denormals()
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(flushing)


def test_flushing_probe_reads_what_torch_was_told(restore_torch_settings) -> None:
    for on in (True, False, True):
        torch.set_flush_denormal(on)
        assert flushing_denormals() is on
    # the probe's meaning, in plain torch: a denormal survives multiplication only when off
    torch.set_flush_denormal(False)
    assert (torch.tensor([1e-40]) * 1.0).item() != 0.0


@pytest.mark.parametrize("flushing_before", [False, True])
def test_train_restores_threads_and_denormal_flushing(restore_torch_settings, monkeypatch,
                                                      flushing_before: bool) -> None:
    monkeypatch.delenv("DQN_THREADS", raising=False)
    torch.set_num_threads(2)
    torch.set_flush_denormal(flushing_before)
    inside = []

    def progress(step: int, _: dict[str, float]) -> None:
        inside.append((torch.get_num_threads(), flushing_denormals()))

    train(from_dict(TINY), [0, 1], progress=progress)
    assert inside and set(inside) == {(1, True)}  # the fast path, during the run only
    assert torch.get_num_threads() == 2
    assert flushing_denormals() is flushing_before


def test_settings_are_restored_when_training_raises(restore_torch_settings) -> None:
    torch.set_num_threads(2)
    torch.set_flush_denormal(False)
    with pytest.raises(RuntimeError, match="boom"), cpu_settings(torch.device("cpu")):
        assert flushing_denormals() and torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2 and not flushing_denormals()


def test_dqn_threads_sets_the_run_thread_count(restore_torch_settings, monkeypatch) -> None:
    monkeypatch.setenv("DQN_THREADS", "2")
    torch.set_num_threads(1)
    with cpu_settings(torch.device("cpu")):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
