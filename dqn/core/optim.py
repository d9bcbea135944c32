"""Adam / AdamW over a flat (S, P) parameter buffer, with a per-seed step count and update mask.

torch.optim would share one step count across seeds and cannot skip a seed (a seed whose memory
holds fewer than batch_size transitions must not move at all, momentum included). Each seed's
row is therefore handed to torch's fused Adam kernel (`torch._fused_adam_`, what
torch.optim.Adam(fused=True) runs: one pass over params, gradient and both moments) as a
tensor of its own with its own step count, and a masked seed is simply left out. On CPU the
mask is read on the host (free there); elsewhere every row steps and the masked rows are put
back, so no step waits for the device.
"""

from __future__ import annotations

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8
ADAMW_WEIGHT_DECAY = 0.01  # torch.optim.AdamW default


class BatchedAdam:
    """Adam (or AdamW with decoupled weight decay) where each seed row has its own state."""

    def __init__(self, params: torch.Tensor, lr: float, adamw: bool = False,
                 host_mask: bool | None = None, grad: torch.Tensor | None = None) -> None:
        self.params = params  # (S, P), updated in place
        self.lr = lr
        self.adamw = adamw
        self.weight_decay = ADAMW_WEIGHT_DECAY if adamw else 0.0
        self.exp_avg = torch.zeros_like(params)  # (S, P)
        self.exp_avg_sq = torch.zeros_like(params)  # (S, P)
        self.steps = torch.zeros(params.shape[0], 1, device=params.device)  # (S, 1)
        # one tensor per seed, each a view of the (S, ...) buffers above
        self._rows = [list(t.unbind(0)) for t in (self.params, self.exp_avg, self.exp_avg_sq)]
        self._steps = list(self.steps[:, 0].unbind(0))
        self.host_mask = params.device.type == "cpu" if host_mask is None else host_mask
        # the caller's gradient buffer (S, P), if it has one: its rows are made once too
        self.grad = grad
        self._grad_rows = list(grad.unbind(0)) if grad is not None else None

    @torch.no_grad()
    def step(self, grad: torch.Tensor, mask: torch.Tensor) -> None:
        """Apply one update to the seeds where mask (S,) is True; others keep params and state
        exactly (bit for bit)."""
        grads = self._grad_rows if grad is self.grad else list(grad.unbind(0))
        if self.host_mask:
            keep = mask.tolist()
            if all(keep):
                self.steps += 1.0
                self._fused(grads, None)
            elif any(keep):
                self.steps += mask[:, None]
                self._fused(grads, [i for i, k in enumerate(keep) if k])
            return
        saved = [t.clone() for t in (self.params, self.exp_avg, self.exp_avg_sq)]
        self.steps += mask[:, None]
        # a never-stepped seed would divide by 1 - beta**0 = 0: give it a count, then undo it
        never = (self.steps == 0).float()
        self.steps += never
        self._fused(grads, None)
        self.steps -= never
        for now, before in zip((self.params, self.exp_avg, self.exp_avg_sq), saved, strict=True):
            now.copy_(torch.where(mask[:, None], now, before))

    def _fused(self, grads: list[torch.Tensor], rows: list[int] | None) -> None:
        """The fused kernel on the seeds in `rows` (None: every seed)."""
        if rows is None:
            (params, exp_avg, exp_avg_sq), steps = self._rows, self._steps
        else:
            params, exp_avg, exp_avg_sq = ([t[i] for i in rows] for t in self._rows)
            grads, steps = [grads[i] for i in rows], [self._steps[i] for i in rows]
        kernel = torch._fused_adamw_ if self.adamw else torch._fused_adam_
        kernel(params, grads, exp_avg, exp_avg_sq, [], steps, amsgrad=False, lr=self.lr,
               beta1=BETAS[0], beta2=BETAS[1], weight_decay=self.weight_decay, eps=EPS,
               maximize=False)


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
