"""n-step transitions for S seeds: each seed's last n environment transitions, and the n-step
transition that is ready to be stored.

The n-step transition from s_t (Sutton & Barto 7.1; Hessel et al. 2018) is

    (s_t, a_t, R, s_{t+m}, terminated_{t+m-1}, truncated_{t+m-1}, m),
    R = sum_{k<m} gamma^k r_{t+k},

with m = n, or fewer when the episode ends (terminated or truncated) at step t+m-1 < t+n-1:
a window never crosses the end of an episode, so never an autoreset. The target is then
y = c R + gamma^m * mask * max_a Q(s_{t+m}, a), with the bootstrap mask of the transition's
last step (dqn.core.td.bootstrap_mask: terminal masking and truncation act as for one step).

Each seed keeps a queue of at most n pending transitions. Every environment step pushes the
step's transition (not an autoreset step's, which is no transition) and then releases at most
one: the oldest, once it has n steps or its episode has ended. After an episode's end its
remaining n - 1 transitions are released one per step over the next steps (the autoreset step
and the new episode's first steps, which release nothing of their own until they have n
steps), so the queue never holds more than n and every step writes one transition per seed,
the same shape as one-step replay. Which released transitions enter replay is the caller's
choice (store_probability): a transition left out of replay still counts in the windows of the
transitions before it, since the windows are made of what the environment did.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def nstep_return(reward: torch.Tensor, done: torch.Tensor, size: torch.Tensor,
                 gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, m) of the oldest pending transition, each (S,), from each seed's pending rewards and
    episode ends in time order, reward (S, n) and done (S, n) (entries k >= size (S,) unused):

        m = 1 + the first k < size with done_k, else size
        R = sum_{k<m} gamma^k reward_k
    """
    S, n = reward.shape
    k = torch.arange(n, device=reward.device)  # (n,)
    ends = done & (k[None, :] < size[:, None])  # (S, n)
    first = torch.where(ends, k[None, :], n).min(dim=1).values  # (S,) n: none ends
    m = torch.minimum(first + 1, size)  # (S,)
    powers = gamma ** k.to(reward.dtype)  # (n,) gamma^k
    R = (torch.where(k[None, :] < m[:, None], reward, 0.0) * powers).sum(dim=1)  # (S,)
    return R, m


@dataclass
class Released:
    """One n-step transition per seed, each with leading dim S; `ready` (S,) marks the seeds
    that released one this step (the others' rows are garbage, to be left out of replay)."""

    obs: torch.Tensor  # (S, obs_dim)
    action: torch.Tensor  # (S,)
    reward: torch.Tensor  # (S,) R
    next_obs: torch.Tensor  # (S, obs_dim) s_{t+m}
    terminated: torch.Tensor  # (S,)
    truncated: torch.Tensor  # (S,)
    horizon: torch.Tensor  # (S,) m
    ready: torch.Tensor  # (S,)

    @property
    def transition(self) -> tuple[torch.Tensor, ...]:
        """(obs, action, reward, next_obs, terminated, truncated), as Replay.add takes them."""
        return (self.obs, self.action, self.reward, self.next_obs, self.terminated,
                self.truncated)


class NStepQueue:
    """The pending transitions of S seeds, n each at most, in (S, n, ...) rings."""

    def __init__(self, S: int, n: int, obs_dim: int, gamma: float,
                 device: torch.device) -> None:
        self.S, self.n, self.gamma = S, n, gamma
        self.obs = torch.zeros(S, n, obs_dim, device=device)  # (S, n, obs_dim)
        self.next_obs = torch.zeros(S, n, obs_dim, device=device)  # (S, n, obs_dim)
        self.action = torch.zeros(S, n, dtype=torch.long, device=device)  # (S, n)
        self.reward = torch.zeros(S, n, device=device)  # (S, n)
        self.terminated = torch.zeros(S, n, dtype=torch.bool, device=device)  # (S, n)
        self.truncated = torch.zeros(S, n, dtype=torch.bool, device=device)  # (S, n)
        self.head = torch.zeros(S, dtype=torch.long, device=device)  # (S,) oldest entry
        self.size = torch.zeros(S, dtype=torch.long, device=device)  # (S,) pending entries
        self._rows = torch.arange(S, device=device)  # (S,)
        self._k = torch.arange(n, device=device)  # (n,)

    def step(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
             next_obs: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
             valid: torch.Tensor) -> Released:
        """Push this step's transition for the seeds where valid (S,) (not autoreset steps),
        then release each seed's oldest transition if it is complete."""
        # push at head + size (mod n); a seed with nothing to push writes its next free slot,
        # which its size does not cover, so the write is dropped
        slot = (self.head + self.size) % self.n  # (S,)
        for buffer, value in ((self.obs, obs), (self.next_obs, next_obs),
                              (self.action, action), (self.reward, reward),
                              (self.terminated, terminated), (self.truncated, truncated)):
            buffer[self._rows, slot] = torch.where(
                valid.view(-1, *[1] * (value.dim() - 1)), value, buffer[self._rows, slot])
        self.size = self.size + valid.long()

        # the pending entries in time order, oldest first
        order = (self.head[:, None] + self._k[None, :]) % self.n  # (S, n)
        rows = self._rows[:, None]  # (S, 1)
        done = self.terminated[rows, order] | self.truncated[rows, order]  # (S, n)
        R, m = nstep_return(self.reward[rows, order], done, self.size, self.gamma)
        ends = done & (self._k[None, :] < self.size[:, None])  # (S, n)
        ready = (self.size == self.n) | ends.any(dim=1)  # (S,)
        last = order[self._rows, (m - 1).clamp(min=0)]  # (S,) the window's last entry
        head = self.head
        out = Released(self.obs[self._rows, head], self.action[self._rows, head], R,
                       self.next_obs[self._rows, last], self.terminated[self._rows, last],
                       self.truncated[self._rows, last], m, ready)
        self.head = torch.where(ready, (head + 1) % self.n, head)
        self.size = self.size - ready.long()
        return out

    def clear(self, mask: torch.Tensor) -> None:
        """Drop every pending transition of the seeds where mask (S,) is True."""
        self.size = torch.where(mask, 0, self.size)
