"""The DQN agent for S seeds at once: acting, the TD update and target-network upkeep.

The maths lives in small pure functions (dqn.core.td: `bootstrap_mask`, `td_target`,
`td_loss`, `polyak`; dqn.core.c51 for the distributional head); `Agent` holds the tensors and
calls them. Each ablation knob is branched on in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dqn.base.config import Config
from dqn.core import c51, noisy
from dqn.core.batchnorm import bn_forward_train, bn_network_backward
from dqn.core.netspec import NetSpec, init_params, init_stats, unflatten
from dqn.core.networks import head, mlp_backward, mlp_forward, q_values
from dqn.core.optim import BatchedAdam, clip_grad_norm
from dqn.core.td import batch_mean, bootstrap_mask, loss_and_dq, polyak, td_loss, td_target


@dataclass
class UpdateStats:
    """Per-seed diagnostics of one gradient step, each (S,); `updated` marks seeds that moved."""

    loss: torch.Tensor
    q_mean: torch.Tensor
    td_abs: torch.Tensor
    grad_norm: torch.Tensor
    updated: torch.Tensor
    td_error: torch.Tensor  # (S, B) new priorities' error: |delta|, or C51's cross-entropy


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
        self.z = (c51.support(self.spec.atoms, self.spec.v_min, self.spec.v_max, device)
                  if self.spec.atoms > 1 else None)  # (K,) C51's atoms
        self.optimizer = BatchedAdam(self.params, config.lr, adamw=config.optimizer == "adamw",
                                     grad=self.grad)

    def _q(self, target: bool, x: torch.Tensor, noise: torch.Tensor | None = None
           ) -> torch.Tensor:
        """Q-values (S, N, A) of the online or the target network (C51: its distributions'
        means), BatchNorm in eval mode; a noisy network acts under `noise` (S, noise_size),
        or as its mean without."""
        out = self._out(target, x, noise)
        return out if self.z is None else c51.mean(out, self.z)

    def _out(self, target: bool, x: torch.Tensor, noise: torch.Tensor | None = None
             ) -> torch.Tensor:
        """The network's output for x (S, N, obs_dim): Q-values (S, N, A), or C51's logits
        (S, N, A, K); see _q."""
        if self.spec.noisy:
            params, stats = ((self.target_params, self.target_stats) if target
                             else (self.params, self.stats))
            plain = noisy.effective(self.spec, params, noise)  # (S, P_base)
            return q_values(noisy.base(self.spec), plain, stats, x, raw=True)[0]
        views = self._target if target else self._online  # per-layer views, made once
        if self.spec.batchnorm:
            return q_values(self.spec, views, self.target_stats if target else self.stats, x,
                            fused=self.config.batchnorm_backward == "manual", raw=True)[0]
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
        or autograd with BatchNorm, noisy layers or C51 (_gradient_autograd). noise (S, 2,
        noise_size): a noisy network's draws for the online and the target network.
        """
        c = self.config
        online_noise, target_noise = (None, None) if noise is None else noise.unbind(1)
        with torch.no_grad():
            next_out = self._out(True, batch["next_obs"], target_noise)  # (S, B, A[, K])
            next_q_target = next_out if self.z is None else c51.mean(next_out, self.z)
            next_q_online = (self._q(False, batch["next_obs"], online_noise) if c.double_dqn
                             else None)
            bootstrap = bootstrap_mask(batch["terminated"], batch["truncated"],
                                       c.terminal_masking, c.truncation)  # (S, B)
            # n-step transitions bootstrap after their own number of steps m: gamma^m
            gamma = c.gamma if "horizon" not in batch else c.gamma ** batch["horizon"].to(
                bootstrap.dtype)  # float or (S, B)
            target_dist = None  # C51's target distribution (S, B, K); y is then its mean
            if self.z is None:
                y = td_target(batch["reward"], bootstrap, next_q_target, next_q_online,
                              gamma, c.reward_scale)  # (S, B)
            else:
                chooser = next_q_target if next_q_online is None else next_q_online
                best = chooser.argmax(dim=-1)  # (S, B): a*, as in td_target
                next_probs = torch.softmax(c51.of_action(next_out, best), dim=-1)  # (S, B, K)
                target_dist = c51.project(next_probs, batch["reward"], bootstrap, gamma,
                                          c.reward_scale, self.z)  # (S, B, K)
                y = target_dist @ self.z  # (S, B)
            tape: list = []  # what a written-out backward pass needs
            td_error = None  # (S, B) C51's cross-entropy, else |q_taken - y| below
            if self.spec.batchnorm and c.batchnorm_backward == "manual":
                q, new_stats = bn_forward_train(self.spec, self._online, self.stats,
                                                batch["obs"], tape)  # (S, B, A)
                q_taken, loss, dq = loss_and_dq(q, batch, y, c.loss)
                bn_network_backward(self.spec, self._online, tape, dq, self.grad)
                self.stats = torch.where(mask[:, None], new_stats, self.stats)
            elif self.spec.batchnorm or self.spec.noisy or self.z is not None:
                q_taken, loss, td_error = self._gradient_autograd(batch, y, mask, online_noise,
                                                                  target_dist)
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
            td_abs = (q_taken - y).abs()  # (S, B)
        self.sync_target(updated=mask)
        return UpdateStats(loss, q_taken.mean(dim=1), td_abs.mean(dim=1), grad_norm, mask,
                           td_abs if td_error is None else td_error)

    def _gradient_autograd(self, batch: dict[str, torch.Tensor], y: torch.Tensor,
                           mask: torch.Tensor, noise: torch.Tensor | None,
                           target_dist: torch.Tensor | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """With BatchNorm, noisy layers or C51: the gradient into self.grad by autograd, and
        the running statistics of the seeds in mask updated; returns (q_taken (S, B), loss
        (S,), C51's cross-entropy per transition (S, B) or None). C51 takes the cross-entropy
        with target_dist (S, B, K), the scalar head the TD loss with y (S, B).

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
            out, new_stats = q_values(spec, net, self.stats, batch["obs"],
                                      train=self.spec.batchnorm, raw=True)  # (S, B, A[, K])
            cross_entropy = None
            if target_dist is None:
                q_taken = out.gather(-1, batch["action"][..., None]).squeeze(-1)  # (S, B)
                loss = td_loss(q_taken, y, self.config.loss, batch.get("weight"))  # (S,)
            else:
                logits = c51.of_action(out, batch["action"])  # (S, B, K) of the taken actions
                cross_entropy = c51.cross_entropy(torch.log_softmax(logits, dim=-1),
                                                  target_dist)  # (S, B)
                loss = batch_mean(cross_entropy, batch.get("weight"))  # (S,)
                q_taken = c51.mean(logits, self.z)  # (S, B)
            grads = torch.autograd.grad(loss.sum(), list(views.values()))
        torch.cat([g.reshape(self.S, -1) for g in grads], dim=1, out=self.grad)
        self.stats = torch.where(mask[:, None], new_stats.detach(), self.stats)
        return (q_taken.detach(), loss.detach(),
                None if cross_entropy is None else cross_entropy.detach())

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
