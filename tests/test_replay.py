"""Seed-batched replay memory: ring order, per-seed clearing and skipping, sampling filled slots."""

from __future__ import annotations

import pytest
import torch

from dqn.core.replay import Replay

pytestmark = pytest.mark.usefixtures("single_thread_torch")

CPU = torch.device("cpu")
OBS = 2


def write(replay: Replay, values: list[float], keep: list[bool] | None = None) -> None:
    """One transition per seed whose every field is derived from that seed's value v."""
    S = replay.S
    v = torch.tensor(values)
    replay.add(
        obs=v[:, None].repeat(1, OBS),
        action=v.long() % 5,
        reward=v * 10,
        next_obs=(v + 0.5)[:, None].repeat(1, OBS),
        terminated=v.long() % 2 == 0,
        truncated=v.long() % 3 == 0,
        keep=torch.tensor(keep if keep is not None else [True] * S),
    )


def stored_values(replay: Replay, seed: int) -> list[float]:
    """The values in a seed's filled slots [0, count), in slot order."""
    n = int(replay.count[seed])
    return replay.obs[seed, :n, 0].tolist()


def test_ring_wraps_around_overwriting_the_oldest():
    replay = Replay(1, 3, OBS, CPU)
    for v in [1.0, 2.0, 3.0, 4.0, 5.0]:
        write(replay, [v])
    assert replay.count.tolist() == [3] and replay.ptr.tolist() == [2]
    # slots: 4 overwrote 1 (slot 0), 5 overwrote 2 (slot 1), 3 is the oldest survivor
    assert stored_values(replay, 0) == [4.0, 5.0, 3.0]
    assert replay.next_obs[0, :3, 1].tolist() == [4.5, 5.5, 3.5]
    assert replay.action[0, :3].tolist() == [4, 0, 3]
    assert replay.reward[0, :3].tolist() == [40.0, 50.0, 30.0]
    assert replay.terminated[0, :3].tolist() == [True, False, False]
    assert replay.truncated[0, :3].tolist() == [False, False, True]


def test_each_seed_has_its_own_pointer():
    replay = Replay(2, 3, OBS, CPU)
    write(replay, [1.0, 11.0])
    write(replay, [2.0, 12.0], keep=[True, False])
    write(replay, [3.0, 13.0])
    write(replay, [4.0, 14.0])
    assert replay.count.tolist() == [3, 3]
    assert replay.ptr.tolist() == [1, 0]
    assert stored_values(replay, 0) == [4.0, 2.0, 3.0]
    assert stored_values(replay, 1) == [11.0, 13.0, 14.0]


def test_clearing_is_per_seed():
    replay = Replay(3, 4, OBS, CPU)
    for t in range(3):
        write(replay, [t + 1.0, t + 11.0, t + 21.0])
    replay.clear(torch.tensor([True, False, True]))
    assert replay.count.tolist() == [0, 3, 0]
    assert replay.ptr.tolist() == [0, 3, 0]
    assert stored_values(replay, 1) == [11.0, 12.0, 13.0]
    write(replay, [7.0, 17.0, 27.0], keep=[True, True, False])
    assert replay.count.tolist() == [1, 4, 0]
    assert stored_values(replay, 0) == [7.0]
    # a cleared seed samples only what was written since, never its old slots
    batch = replay.sample(torch.tensor([[0.0, 0.5, 0.99]] * 3))
    assert batch["obs"][0, :, 0].tolist() == [7.0, 7.0, 7.0]


def test_keep_false_writes_nothing_visible():
    replay = Replay(2, 3, OBS, CPU)
    write(replay, [1.0, 11.0])
    before = {k: getattr(replay, k)[1, :3].clone()
              for k in ("obs", "next_obs", "action", "reward", "terminated", "truncated")}
    for v in (2.0, 3.0, 4.0):
        write(replay, [v, v + 10.0], keep=[True, False])
    assert replay.count.tolist() == [3, 1] and replay.ptr.tolist() == [1, 1]
    for k, old in before.items():
        assert torch.equal(getattr(replay, k)[1, :3], old), k
    batch = replay.sample(torch.rand(2, 50, generator=torch.Generator().manual_seed(0)))
    assert set(batch["obs"][1, :, 0].tolist()) == {11.0}


def test_sampling_hand_picked_uniforms_give_exact_items():
    replay = Replay(2, 5, OBS, CPU)
    write(replay, [1.0, 11.0])
    write(replay, [2.0, 12.0])
    write(replay, [3.0, 13.0], keep=[False, True])
    # seed 0 holds 2 items, seed 1 holds 3: index = floor(u * count)
    u = torch.tensor([[0.0, 0.49, 0.5, 0.999], [0.0, 0.34, 0.34, 0.999]])
    batch = replay.sample(u)
    assert batch["obs"][:, :, 0].tolist() == [[1.0, 1.0, 2.0, 2.0], [11.0, 12.0, 12.0, 13.0]]
    assert batch["next_obs"][:, :, 0].tolist() == [[1.5, 1.5, 2.5, 2.5],
                                                  [11.5, 12.5, 12.5, 13.5]]
    assert batch["action"].tolist() == [[1, 1, 2, 2], [1, 2, 2, 3]]
    assert batch["reward"].tolist() == [[10.0, 10.0, 20.0, 20.0], [110.0, 120.0, 120.0, 130.0]]
    assert batch["terminated"].tolist() == [[False, False, True, True],
                                            [False, True, True, False]]
    assert batch["truncated"].tolist() == [[False, False, False, False],
                                           [False, True, True, False]]
    assert batch["obs"].shape == (2, 4, OBS)


def test_sampling_never_reaches_unfilled_slots():
    replay = Replay(3, 10, OBS, CPU)
    for t in range(4):
        write(replay, [t + 1.0, t + 11.0, t + 21.0], keep=[True, t < 2, t < 1])
    assert replay.count.tolist() == [4, 2, 1]
    # the largest float32 below 1 too: floor(u * count) must stay below count
    u = torch.rand(3, 500, generator=torch.Generator().manual_seed(1))
    u[:, 0] = torch.nextafter(torch.tensor(1.0), torch.tensor(0.0))
    batch = replay.sample(u)
    assert set(batch["obs"][0, :, 0].tolist()) == {1.0, 2.0, 3.0, 4.0}
    assert set(batch["obs"][1, :, 0].tolist()) == {11.0, 12.0}
    assert set(batch["obs"][2, :, 0].tolist()) == {21.0}
    assert batch["obs"][:, 0, 0].tolist() == [4.0, 12.0, 21.0]


def test_an_empty_seed_samples_slot_zero():
    """Documented: a seed with nothing stored gets slot 0 (the caller masks it out), never the
    scratch slot that skipped writes go to."""
    replay = Replay(2, 3, OBS, CPU)
    write(replay, [1.0, 11.0], keep=[True, False])
    write(replay, [2.0, 12.0], keep=[True, False])  # seed 1's skipped writes: scratch slot
    replay.clear(torch.tensor([True, False]))
    write(replay, [3.0, 13.0], keep=[False, False])
    assert replay.count.tolist() == [0, 0]
    batch = replay.sample(torch.tensor([[0.0, 0.7], [0.2, 0.9]]))
    assert batch["obs"][:, :, 0].tolist() == [[1.0, 1.0], [0.0, 0.0]]
