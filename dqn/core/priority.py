"""Proportional prioritized replay (Schaul et al. 2016), per seed and vectorised over seeds.

A seed's transition i has priority p_i = (|delta_i| + eps)^alpha, where delta_i is its TD error
when it was last sampled; a new transition gets the largest priority the seed has held, so it
is sampled at least once soon. Sampling draws i with probability

    P(i) = p_i / sum_{j < count} p_j                      over the seed's filled slots,

by inverting each seed's cumulative sum with its own uniforms (one cumsum and one
searchsorted over (S, C): no sum tree, no loop over seeds). The importance-sampling weights
correct the bias of sampling non-uniformly:

    w_i = (N P(i))^(-beta) / max_j (N P(j))^(-beta) = (P(i) / min_j P(j))^(-beta),

normalised by the largest weight any of the seed's filled slots could get (as OpenAI
Baselines and Dopamine do), so weights are at most 1; beta is annealed linearly from
priority_beta_start to 1 over training (dqn.core.schedules.priority_beta).
"""

from __future__ import annotations

import torch


def proportional_sample(priority: torch.Tensor, count: torch.Tensor, uniform: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slots (S, B) drawn with P(i) = p_i / sum_{j<count} p_j from priorities (S, C) and fill
    counts (S,), with uniforms (S, B) in [0, 1); returns (slots, P(slots)) (S, B) and each
    seed's smallest P(j) over its filled slots (S, 1), which importance_weights needs. A seed
    with count 0 gets slot 0 and probability 0 (garbage the caller masks out)."""
    C = priority.shape[1]
    filled = torch.arange(C, device=priority.device)[None, :] < count[:, None]  # (S, C)
    p = torch.where(filled, priority, 0.0)  # (S, C)
    cdf = p.cumsum(dim=1)  # (S, C)
    total = cdf[:, -1:].clamp(min=torch.finfo(p.dtype).tiny)  # (S, 1)
    # the first slot whose cumulative sum exceeds u * total: P(i) = p_i / total
    slots = torch.searchsorted(cdf, uniform * cdf[:, -1:], right=True)  # (S, B)
    slots = torch.minimum(slots, (count - 1).clamp(min=0)[:, None])
    lowest = torch.where(filled, priority, torch.inf).min(dim=1, keepdim=True).values  # (S, 1)
    return slots, p.gather(1, slots) / total, lowest / total


def importance_weights(prob: torch.Tensor, lowest: torch.Tensor, beta: float) -> torch.Tensor:
    """w = (P(i) / min_j P(j))^(-beta), (S, B), from the sampled slots' probabilities (S, B)
    and each seed's smallest probability over its filled slots (S, 1)."""
    return (prob / lowest) ** (-beta)


def new_priorities(td_abs: torch.Tensor, alpha: float, eps: float) -> torch.Tensor:
    """p = (|delta| + eps)^alpha, elementwise."""
    return (td_abs + eps) ** alpha
