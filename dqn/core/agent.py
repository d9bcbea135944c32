"""The DQN agent for S seeds at once: acting, the TD update and target-network upkeep.

The maths lives in small pure functions (`bootstrap_mask`, `td_target`, `td_loss`, `polyak`);
`Agent` holds the tensors and calls them. Each ablation knob is branched on in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dqn.base.config import Config
from dqn.core import noisy
from dqn.core.batchnorm import bn_forward_train, bn_network_backward
from dqn.core.networks import (
    NetSpec,
    head,
    init_params,
    init_stats,
    mlp_backward,
    mlp_forward,
    q_values,
    unflatten,
)
from dqn.core.optim import BatchedAdam, clip_grad_norm


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


@dataclass
class UpdateStats:
    """Per-seed diagnostics of one gradient step, each (S,); `updated` marks seeds that moved."""

    loss: torch.Tensor
    q_mean: torch.Tensor
    td_abs: torch.Tensor
    grad_norm: torch.Tensor
    updated: torch.Tensor
    td_error: torch.Tensor  # (S, B) |delta| of every sampled transition (new priorities)


class Agent:
    """Online and target networks, optimizer state, acting and learning for S seeds."""

    def __init__(
        self, config: Config, obs_dim: int, n_actions: int, init_seeds: list[int],
        device: torch.device,
    ) -> None:
        self.config = config
        self.spec = NetSpec.from_config(config, obs_dim, n_actions)
        self.S, self.n_actions, self.device = len(init_seeds), n_actions, device
        self.on_cpu = device.type == "cpu"
        self.params = init_params(noisy.base(self.spec), init_seeds, device)  # (S, P)
        if self.spec.noisy:  # then sigma (S, P_lin) after the plain network's parameters
            self.params = torch.cat([self.params, noisy.init_sigma(
                self.spec, self.S, config.noisy_sigma0, device)], dim=1)
        self.stats = init_stats(self.spec, self.S, device)  # (S, n_stats) BatchNorm running
        self.target_params = self.params.clone()  # (S, P)
        self.target_stats = self.stats.clone()  # (S, n_stats)
        self.grad = torch.zeros_like(self.params)  # (S, P)
        # per-layer views, made once: the buffers are only ever updated in place
        self._online = unflatten(self.spec, self.params)
        self._target = unflatten(self.spec, self.target_params)
        # per network (target?): (the key it was built at, the output layer)
        self._heads: dict[bool, tuple[tuple[int, int], tuple[torch.Tensor, torch.Tensor]]] = {}
        self._steps = 0  # optimizer steps taken
        self.optimizer = BatchedAdam(self.params, config.lr, adamw=config.optimizer == "adamw",
                                     grad=self.grad)

    def _q(self, target: bool, x: torch.Tensor, noise: torch.Tensor | None = None
           ) -> torch.Tensor:
        """Q-values (S, N, A) of the online or the target network, BatchNorm in eval mode;
        a noisy network acts under `noise` (S, noise_size), or as its mean without."""
        if self.spec.noisy:
            params, stats = ((self.target_params, self.target_stats) if target
                             else (self.params, self.stats))
            plain = noisy.effective(self.spec, params, noise)  # (S, P_base)
            return q_values(noisy.base(self.spec), plain, stats, x)[0]
        views = self._target if target else self._online  # per-layer views, made once
        if self.spec.batchnorm:
            return q_values(self.spec, views, self.target_stats if target else self.stats, x,
                            fused=self.config.batchnorm_backward == "manual")[0]
        return mlp_forward(self.spec, views, x, out_layer=self._out_layer(target))

    def _out_layer(self, target: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The output layer in the layout the forward pass wants (networks.head), rebuilt only
        after its buffer changed: an in-place op bumps a tensor's version counter, and the
        fused Adam kernel, which does not, bumps self._steps."""
        flat = self.target_params if target else self.params
        key = (flat._version, self._steps)
        if target not in self._heads or self._heads[target][0] != key:
            views = self._target if target else self._online
            self._heads[target] = (key, head(self.spec, views))
        return self._heads[target][1]

    # acting -------------------------------------------------------------------------------
    @torch.no_grad()
    def greedy(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Greedy actions (S, N) for observations (S, N, obs_dim), BatchNorm in eval mode; a
        noisy network under `noise` (S, noise_size), or its mean network without."""
        return self._q(False, obs, noise).argmax(dim=-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, epsilon: torch.Tensor, uniform: torch.Tensor,
            random_action: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Epsilon-greedy actions (S,) for one observation per seed (S, obs_dim): seed i takes
        random_action[i] (S,) where uniform[i] (S,) in [0, 1) is below epsilon[i], else its
        greedy action (a noisy network's under this step's `noise`, with epsilon 0)."""
        explore = uniform < epsilon  # (S,)
        if self.on_cpu and bool(explore.all()):  # read on the host for free: no greedy needed
            return random_action
        greedy = self.greedy(obs[:, None], noise)[:, 0]  # (S,)
        return torch.where(explore, random_action, greedy)

    # learning -----------------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor], mask: torch.Tensor,
               noise: torch.Tensor | None = None) -> UpdateStats:
        """One gradient step on a batch (S, B, ...) for the seeds where mask (S,) is True.

        Each seed's gradient is that of its own mean loss alone: batched matmuls per seed
        (networks.mlp_backward; dqn.core.batchnorm's with batchnorm_backward = "manual"),
        or autograd with BatchNorm or noisy layers (_gradient_autograd). noise (S, 2,
        noise_size): a noisy network's draws for the online and the target network.
        """
        c = self.config
        online_noise, target_noise = (None, None) if noise is None else noise.unbind(1)
        with torch.no_grad():
            next_q_target = self._q(True, batch["next_obs"], target_noise)  # (S, B, A)
            next_q_online = (self._q(False, batch["next_obs"], online_noise) if c.double_dqn
                             else None)
            bootstrap = bootstrap_mask(batch["terminated"], batch["truncated"],
                                       c.terminal_masking, c.truncation)  # (S, B)
            # n-step transitions bootstrap after their own number of steps m: gamma^m
            gamma = c.gamma if "horizon" not in batch else c.gamma ** batch["horizon"].to(
                bootstrap.dtype)  # float or (S, B)
            y = td_target(batch["reward"], bootstrap, next_q_target, next_q_online,
                          gamma, c.reward_scale)  # (S, B)
            tape: list = []  # what a written-out backward pass needs
            if self.spec.batchnorm and c.batchnorm_backward == "manual":
                q, new_stats = bn_forward_train(self.spec, self._online, self.stats,
                                                batch["obs"], tape)  # (S, B, A)
                q_taken, loss, dq = loss_and_dq(q, batch, y, c.loss)
                bn_network_backward(self.spec, self._online, tape, dq, self.grad)
                self.stats = torch.where(mask[:, None], new_stats, self.stats)
            elif self.spec.batchnorm or self.spec.noisy:
                q_taken, loss = self._gradient_autograd(batch, y, mask, online_noise)
            else:
                q = mlp_forward(self.spec, self._online, batch["obs"], tape,
                                out_layer=self._out_layer(False))  # (S, B, A)
                q_taken, loss, dq = loss_and_dq(q, batch, y, c.loss)
                mlp_backward(self.spec, self._online, tape, dq, self.grad)
            # masked seeds get exactly zero: where, not multiply, because a masked seed's batch
            # may hold NaN (an empty memory samples garbage) and 0 * NaN is NaN. On the CPU a
            # mask read on the host is free, and saves the pass when every seed is ready.
            grad = self.grad
            if not self.on_cpu or not bool(mask.all()):
                grad = torch.where(mask[:, None], grad, 0.0)
            grad, grad_norm = clip_grad_norm(grad, c.max_grad_norm)
            self.optimizer.step(grad, mask)
            self._steps += 1
            td_error = (q_taken - y).abs()  # (S, B)
        self.sync_target(updated=mask)
        return UpdateStats(loss, q_taken.mean(dim=1), td_error.mean(dim=1), grad_norm, mask,
                           td_error)

    def _gradient_autograd(self, batch: dict[str, torch.Tensor], y: torch.Tensor,
                           mask: torch.Tensor, noise: torch.Tensor | None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """With BatchNorm or noisy layers: the gradient into self.grad by autograd, and the
        running statistics of the seeds in mask updated; returns (q_taken (S, B), loss (S,)).

        The loss summed over seeds has, for seed i, the gradient of seed i's own mean loss
        alone, so one backward pass serves all seeds independently. Gradients are taken with
        respect to per-layer views of the flat buffer: the same numbers as through the flat
        buffer, without autograd zero-filling an (S, P) tensor for every slice. A noisy
        network's act as a plain one (noisy.effective) through which mu and sigma get theirs.
        """
        with torch.enable_grad():
            views = {k: v.requires_grad_() for k, v in unflatten(self.spec, self.params).items()}
            net, spec = views, self.spec
            if self.spec.noisy:
                flat = torch.cat([v.reshape(self.S, -1) for v in views.values()], dim=1)
                spec = noisy.base(self.spec)
                net = unflatten(spec, noisy.effective(self.spec, flat, noise))
            q, new_stats = q_values(spec, net, self.stats, batch["obs"],
                                    train=self.spec.batchnorm)
            q_taken = q.gather(-1, batch["action"][..., None]).squeeze(-1)  # (S, B)
            loss = td_loss(q_taken, y, self.config.loss, batch.get("weight"))  # (S,)
            grads = torch.autograd.grad(loss.sum(), list(views.values()))
        torch.cat([g.reshape(self.S, -1) for g in grads], dim=1, out=self.grad)
        self.stats = torch.where(mask[:, None], new_stats.detach(), self.stats)
        return q_taken.detach(), loss.detach()

    # target network -----------------------------------------------------------------------
    @torch.no_grad()
    def sync_target(self, *, updated: torch.Tensor | None = None, step: int = 0,
                    episodes: torch.Tensor | None = None,
                    episode_ended: np.ndarray | torch.Tensor | None = None) -> None:
        """Target-network upkeep, the four kinds side by side. Each is a Polyak update of the
        seeds due (see `polyak`; tau = 1 is a hard copy, as SB3 and CleanRL treat it):

            target         due                                           seeds         tau
            none           after every gradient step                     that moved    1
            soft           after every gradient step                     that moved    tau
            hard_steps     after env steps that are multiples of period  all           1
            hard_episodes  after an env step that ended episodes         whose count   1
                                                                         % period == 0

        'none' keeps the target equal to the online network, so s' is always valued by the
        current online weights. Call with `updated` (S,) after a gradient step (Agent.update
        does), and with `step`, the finished-episode counts `episodes` (S,) and the env's
        `episode_ended` (S,) after an env step (a host array: steps that end no episode cost
        nothing; a device tensor is never read back).
        """
        c, due, tau = self.config, None, 1.0
        if updated is not None:  # after a gradient step
            if c.target in ("none", "soft"):
                due, tau = updated, (c.tau if c.target == "soft" else 1.0)
        elif c.target == "hard_steps" and step % c.target_period == 0:
            due = torch.ones(self.S, dtype=torch.bool, device=self.device)
        elif c.target == "hard_episodes" and episode_ended is not None and (
                isinstance(episode_ended, torch.Tensor) or episode_ended.any()):
            ended = torch.as_tensor(episode_ended, device=self.device)
            due = ended & (episodes % c.target_period == 0)
        if due is not None:  # in place: the target's per-layer views stay valid
            self.target_params.copy_(polyak(self.target_params, self.params, tau, due))
            self.target_stats.copy_(polyak(self.target_stats, self.stats, tau, due))
