"""The TD learning rule's maths as small pure functions on (S, B) tensors: where the target
bootstraps, the Bellman target, the loss and its gradient, and the Polyak target update."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bootstrap_mask(
    terminated: torch.Tensor, truncated: torch.Tensor, terminal_masking: bool, truncation: str
) -> torch.Tensor:
    """1 where the target bootstraps from s', 0 where it stops (float, same shape as inputs).

    terminal_masking stops at true terminal states; truncation == "terminal" also stops at
    time-limit truncations. Each knob adds its own stop, so each changes exactly one thing.
    """
    stop = torch.zeros_like(terminated)
    if terminal_masking:
        stop = stop | terminated
    if truncation == "terminal":
        stop = stop | truncated
    return (~stop).float()


def td_target(
    reward: torch.Tensor, bootstrap: torch.Tensor, next_q_target: torch.Tensor,
    next_q_online: torch.Tensor | None, gamma: float | torch.Tensor, reward_scale: float,
) -> torch.Tensor:
    """The Bellman target, (S, B) from rewards (S, B) and next-state Q-values (S, B, A).

        y = c * r + gamma * m * Q_target(s', a*)
        a* = argmax_a Q_target(s', a)              (DQN)
        a* = argmax_a Q_online(s', a)              (double DQN: pass next_q_online)

    c is reward_scale (inside the target only), m the bootstrap mask. For n-step transitions
    r is the discounted sum of m rewards and gamma the tensor gamma^m (S, B) (dqn.core.nstep).
    """
    if next_q_online is None:
        next_value = next_q_target.max(dim=-1).values  # (S, B)
    else:
        best = next_q_online.argmax(dim=-1, keepdim=True)  # (S, B, 1)
        next_value = next_q_target.gather(-1, best).squeeze(-1)  # (S, B)
    return reward_scale * reward + gamma * bootstrap * next_value


def td_loss(q_taken: torch.Tensor, target: torch.Tensor, kind: str,
            weight: torch.Tensor | None = None) -> torch.Tensor:
    """Each seed's mean loss over its batch, (S,), from (S, B) predictions and targets; with
    importance weights w (S, B) (prioritized replay) the mean of w_i * loss_i."""
    if kind == "huber":
        per_item = F.smooth_l1_loss(q_taken, target, reduction="none", beta=1.0)
    else:
        per_item = F.mse_loss(q_taken, target, reduction="none")
    return batch_mean(per_item, weight)


def batch_mean(per_item: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Each seed's mean over its batch (S,) of per-transition losses (S, B), importance-weighted
    by w (S, B) when given: mean_i w_i * loss_i (td_loss's, and C51's cross-entropy's)."""
    if weight is not None:
        per_item = weight * per_item
    return per_item.mean(dim=1)


def td_loss_grad(q_taken: torch.Tensor, target: torch.Tensor, kind: str,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
    """d td_loss / d q_taken, (S, B): each seed's loss is a mean over its B items, so

        mse:    2 w (q - y) / B
        huber:  w clamp(q - y, -1, 1) / B     (delta 1)

    with w the importance weights (1 without prioritized replay).
    """
    diff = q_taken - target
    grad = diff.clamp(-1.0, 1.0) / diff.shape[1] if kind == "huber" else diff * (
        2.0 / diff.shape[1])
    return grad if weight is None else weight * grad


def loss_and_dq(q: torch.Tensor, batch: dict[str, torch.Tensor], y: torch.Tensor,
                kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q_taken (S, B), td_loss (S,), dq (S, B, A)) for Q-values q (S, B, A); dq, the loss's
    gradient in q (nonzero at the actions taken), starts a written-out backward pass."""
    q_taken = q.gather(-1, batch["action"][..., None]).squeeze(-1)  # (S, B)
    weight = batch.get("weight")  # (S, B) importance weights, or None
    dq = torch.zeros_like(q).scatter_(-1, batch["action"][..., None],
                                      td_loss_grad(q_taken, y, kind, weight)[..., None])
    return q_taken, td_loss(q_taken, y, kind, weight), dq


def polyak(target: torch.Tensor, online: torch.Tensor, tau: float, due: torch.Tensor
           ) -> torch.Tensor:
    """The target rows (S, n) after a Polyak update of the seeds where due (S,) is True:

        theta' <- tau * theta + (1 - tau) * theta'

    tau = 1 is a hard copy, taken exactly (not through the interpolation's rounding).
    """
    mixed = online if tau == 1.0 else target.lerp(online, tau)
    return torch.where(due[:, None], mixed, target)
