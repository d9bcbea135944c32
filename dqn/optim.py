"""Adam / AdamW over a flat (S, P) parameter buffer, with a per-seed step count and update mask.

torch.optim would share one step count across seeds and cannot skip a seed (a seed whose memory
holds fewer than batch_size transitions must not move at all, momentum included), so the update
is written out here, following torch.optim.Adam's single-tensor arithmetic line by line.
"""

from __future__ import annotations

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8
ADAMW_WEIGHT_DECAY = 0.01  # torch.optim.AdamW default


class BatchedAdam:
    """Adam (or AdamW with decoupled weight decay) where each seed row has its own state."""

    def __init__(self, params: torch.Tensor, lr: float, adamw: bool = False) -> None:
        self.params = params  # (S, P), a leaf with requires_grad
        self.lr = lr
        self.weight_decay = ADAMW_WEIGHT_DECAY if adamw else 0.0
        self.exp_avg = torch.zeros_like(params)  # (S, P)
        self.exp_avg_sq = torch.zeros_like(params)  # (S, P)
        self.steps = torch.zeros(params.shape[0], 1, device=params.device)  # (S, 1)

    @torch.no_grad()
    def step(self, grad: torch.Tensor, mask: torch.Tensor) -> None:
        """Apply one update to the seeds where mask (S,) is True; others keep params and state."""
        b1, b2 = BETAS
        m = mask[:, None]
        steps = self.steps + m
        p = self.params * (1 - self.lr * self.weight_decay) if self.weight_decay else self.params
        exp_avg = self.exp_avg.lerp(grad, 1 - b1)
        exp_avg_sq = self.exp_avg_sq * b2 + (1 - b2) * grad * grad
        safe_steps = steps.clamp(min=1)  # masked seeds that never stepped: avoid 0/0
        bias_correction1 = 1 - b1 ** safe_steps
        bias_correction2_sqrt = (1 - b2 ** safe_steps).sqrt()
        denom = exp_avg_sq.sqrt() / bias_correction2_sqrt + EPS
        new = p - (self.lr / bias_correction1) * exp_avg / denom
        self.params.copy_(torch.where(m, new, self.params))
        self.exp_avg = torch.where(m, exp_avg, self.exp_avg)
        self.exp_avg_sq = torch.where(m, exp_avg_sq, self.exp_avg_sq)
        self.steps = steps


def clip_grad_norm(grad: torch.Tensor, max_norm: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip each seed's gradient row (S, P) to max_norm; returns (clipped grad, norm before (S,)).

    Same rule as torch.nn.utils.clip_grad_norm_: scale by min(1, max_norm / (norm + 1e-6)).
    max_norm 0 returns the gradient unchanged.
    """
    norm = torch.linalg.vector_norm(grad, dim=1)  # (S,)
    if max_norm <= 0:
        return grad, norm
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    return grad * scale[:, None], norm
