"""Preallocated, seed-batched replay memory: one ring per seed, all in (S, C, ...) tensors.

Each seed has its own write pointer and fill count, so clearing, store probability and skipped
autoreset steps stay per seed. A seed's filled slots are always [0, count), so sampling is one
uniform draw scaled by count and one gather. Writes a seed skips go to a scratch slot C that is
never sampled, which keeps every write the same shape (no host sync, no per-seed loop).
"""

from __future__ import annotations

import torch

from dqn.core.priority import importance_weights, new_priorities, proportional_sample


class Replay:
    """Transitions (s, a, r, s', terminated, truncated) for S seeds, capacity C each."""

    def __init__(self, S: int, capacity: int, obs_dim: int, device: torch.device,
                 horizon: bool = False, priority_alpha: float | None = None,
                 priority_eps: float = 1e-6) -> None:
        """horizon: also keep each transition's step count m (n-step transitions, dqn.core.nstep).
        priority_alpha: sample in proportion to priorities (|delta| + priority_eps)^alpha
        (dqn.core.priority); None samples uniformly."""
        C1 = capacity + 1  # + the scratch slot
        self.S, self.capacity, self.device = S, capacity, device
        self.obs = torch.zeros(S, C1, obs_dim, device=device)  # (S, C+1, obs_dim)
        self.next_obs = torch.zeros(S, C1, obs_dim, device=device)  # (S, C+1, obs_dim)
        self.action = torch.zeros(S, C1, dtype=torch.long, device=device)  # (S, C+1)
        self.reward = torch.zeros(S, C1, device=device)  # (S, C+1)
        self.terminated = torch.zeros(S, C1, dtype=torch.bool, device=device)  # (S, C+1)
        self.truncated = torch.zeros(S, C1, dtype=torch.bool, device=device)  # (S, C+1)
        self.horizon = (torch.ones(S, C1, dtype=torch.long, device=device)  # (S, C+1)
                        if horizon else None)
        self.alpha, self.eps = priority_alpha, priority_eps
        self.priority = (torch.ones(S, C1, device=device)  # (S, C+1) p_i = (|d| + eps)^alpha
                         if priority_alpha is not None else None)
        self.max_priority = torch.ones(S, device=device)  # (S,) given to new transitions
        self.ptr = torch.zeros(S, dtype=torch.long, device=device)  # (S,) next slot to write
        self.count = torch.zeros(S, dtype=torch.long, device=device)  # (S,) filled slots
        self._rows = torch.arange(S, device=device)  # (S,)
        self._base = self._rows * C1  # (S,) where each seed's ring starts in the flat view

    def add(
        self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
        next_obs: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
        keep: torch.Tensor, every: bool = False, horizon: torch.Tensor | None = None,
    ) -> None:
        """Store one transition per seed (tensors with leading dim S) where keep (S,) is True.

        every: the caller knows on the host that keep is all True, which saves three passes.
        horizon (S,): each transition's step count, for a memory made with horizon=True.
        """
        slot = self.ptr if every else torch.where(keep, self.ptr, self.capacity)  # (S,)
        # index_copy_ into the (S * (C+1), ...) views: cheaper than advanced-index assignment
        flat = self._base + slot  # (S,)
        pairs = [(self.obs, obs), (self.next_obs, next_obs), (self.action, action),
                 (self.reward, reward), (self.terminated, terminated),
                 (self.truncated, truncated)]
        if self.horizon is not None:
            if horizon is None:
                raise ValueError("this memory keeps horizons: pass horizon")
            pairs.append((self.horizon, horizon))
        if self.priority is not None:  # new transitions: the largest priority the seed held
            pairs.append((self.priority, self.max_priority))
        for buffer, value in pairs:
            buffer.view(-1, *buffer.shape[2:]).index_copy_(0, flat, value)
        if every:
            self.ptr = (self.ptr + 1) % self.capacity
            self.count = (self.count + 1).clamp(max=self.capacity)
            return
        self.ptr = torch.where(keep, (self.ptr + 1) % self.capacity, self.ptr)
        self.count = torch.where(keep, (self.count + 1).clamp(max=self.capacity), self.count)

    def clear(self, mask: torch.Tensor) -> None:
        """Forget everything stored for the seeds where mask (S,) is True."""
        self.ptr = torch.where(mask, 0, self.ptr)
        self.count = torch.where(mask, 0, self.count)
        self.max_priority = torch.where(mask, 1.0, self.max_priority)

    def sample(self, uniform: torch.Tensor, beta: float = 1.0) -> dict[str, torch.Tensor]:
        """A batch (S, B, ...) drawn with replacement from each seed's filled slots: uniformly,
        or in proportion to priorities, with the slots drawn ("index") and their
        importance-sampling weights ("weight", exponent beta; dqn.core.priority).

        `uniform` (S, B) in [0, 1) comes from the caller's replay generator. A seed with count 0
        gets slot 0 (garbage the caller must mask out; see Agent.update).
        """
        S, B = uniform.shape
        C = self.capacity
        if self.priority is None:
            top = (self.count - 1).clamp(min=0)[:, None]  # (S, 1)
            idx = torch.minimum((uniform * self.count[:, None]).long(), top)  # (S, B)
        else:
            idx, prob, lowest = proportional_sample(self.priority[:, :C], self.count, uniform)
            weight = importance_weights(prob, lowest, beta)
        # one index_select per tensor on the (S * (C+1), ...) view: 2-3x faster than
        # advanced indexing with (rows, idx) on CPU
        flat = (idx + self._base[:, None]).view(-1)  # (S*B,)

        def take(t: torch.Tensor) -> torch.Tensor:
            return t.view(S * (self.capacity + 1), *t.shape[2:]).index_select(0, flat).view(
                S, B, *t.shape[2:])

        batch = {
            "obs": take(self.obs),  # (S, B, obs_dim)
            "action": take(self.action),  # (S, B)
            "reward": take(self.reward),  # (S, B)
            "next_obs": take(self.next_obs),  # (S, B, obs_dim)
            "terminated": take(self.terminated),  # (S, B)
            "truncated": take(self.truncated),  # (S, B)
        }
        if self.horizon is not None:
            batch["horizon"] = take(self.horizon)  # (S, B)
        if self.priority is not None:
            batch["index"], batch["weight"] = idx, weight  # (S, B), (S, B)
        return batch

    def update_priorities(self, index: torch.Tensor, td_abs: torch.Tensor,
                          mask: torch.Tensor) -> None:
        """After a gradient step: the sampled slots index (S, B) of the seeds where mask (S,)
        is True get priority (|delta| + eps)^alpha from their TD errors td_abs (S, B); nothing
        else changes. A slot drawn twice in a batch gets one of its two (equal-input) values."""
        assert self.priority is not None and self.alpha is not None
        current = self.priority.gather(1, index)  # (S, B)
        value = torch.where(mask[:, None], new_priorities(td_abs, self.alpha, self.eps),
                            current)  # (S, B)
        self.priority.scatter_(1, index, value)
        self.max_priority = torch.where(mask, torch.maximum(self.max_priority,
                                                            value.max(dim=1).values),
                                        self.max_priority)
