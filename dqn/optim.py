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
        self.params = params  # (S, P), updated in place
        self.lr = lr
        self.weight_decay = ADAMW_WEIGHT_DECAY if adamw else 0.0
        self.exp_avg = torch.zeros_like(params)  # (S, P)
        self.exp_avg_sq = torch.zeros_like(params)  # (S, P)
        self.steps = torch.zeros(params.shape[0], 1, device=params.device)  # (S, 1)

    @torch.no_grad()
    def step(self, grad: torch.Tensor, mask: torch.Tensor) -> None:
        """Apply one update to the seeds where mask (S,) is True; others keep params and state.

        The mask is folded into the interpolation weights and the step size, so a masked seed's
        row is left exactly as it was (its gradient is zero, so nothing non-finite is scaled).
        """
        b1, b2 = BETAS
        m = mask[:, None].float()  # (S, 1)
        self.steps += m
        if self.weight_decay:
            self.params.mul_(1 - self.lr * self.weight_decay * m)
        # torch writes v * b2 + (1 - b2) * g^2; lerp is the same sum, up to rounding
        self.exp_avg.lerp_(grad, (1 - b1) * m)
        self.exp_avg_sq.lerp_(grad * grad, (1 - b2) * m)
        safe_steps = self.steps.clamp(min=1)  # seeds that never stepped: avoid 0/0
        bias_correction1 = 1 - b1**safe_steps  # (S, 1)
        bias_correction2_sqrt = (1 - b2**safe_steps).sqrt()  # (S, 1)
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(EPS)
        step_size = m * self.lr / bias_correction1  # (S, 1), zero for masked seeds
        self.params.sub_(step_size * self.exp_avg / denom)


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
