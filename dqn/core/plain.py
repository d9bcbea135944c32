"""A plain single-seed DQN in torch.nn and torch.optim (CleanRL style), driven by a Config.

This is what a user would write instead of this project's seed batching: one nn.Module, one
gymnasium env, a numpy replay ring, torch.optim.Adam. `make bench` times every batched run
against it, and scripts/reference_dqn.py uses it to cross-check findings with code that
shares nothing with dqn/'s networks, optimizer, replay or training loop. It supports the
knobs those uses need and refuses the others (BatchNorm, memory clearing, storing a fraction
of transitions); greedy evaluation is left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dqn.base.config import Config

UNSUPPORTED = {"batchnorm": False, "clear_memory_each_episode": False, "store_probability": 1.0}


class QNet(nn.Module):
    """MLP Q-network, with a dueling head (Q = V + A - mean/max A) when asked."""

    def __init__(self, c: Config, obs_dim: int, n_actions: int) -> None:
        super().__init__()
        act = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}[c.activation]
        layers: list[nn.Module] = []
        for a, b in zip((obs_dim, *c.hidden), c.hidden, strict=False):
            layers += [nn.Linear(a, b), act()]
        self.body = nn.Sequential(*layers)
        self.dueling, self.aggregation = c.dueling, c.dueling_aggregation
        self.value = nn.Linear(c.hidden[-1], 1) if c.dueling else None
        self.head = nn.Linear(c.hidden[-1], n_actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        if not self.dueling:
            return self.head(h)
        adv = self.head(h)
        centre = adv.mean(-1, keepdim=True) if self.aggregation == "mean" \
            else adv.max(-1, keepdim=True).values
        return self.value(h) + adv - centre


@dataclass
class PlainRun:
    """What a plain run measured: wall time (start-up included) and a few learning traces."""

    steps: int
    seconds: float
    episode_returns: list[float] = field(default_factory=list)
    q_means: list[float] = field(default_factory=list)


def epsilon(c: Config, step: int, episodes: int) -> float:
    if c.epsilon_schedule == "linear":
        return c.epsilon_end + (c.epsilon_start - c.epsilon_end) * max(
            0.0, 1.0 - step / c.epsilon_decay)
    t = episodes if c.epsilon_schedule == "exp_episode" else step
    return c.epsilon_end + (c.epsilon_start - c.epsilon_end) * math.exp(-t / c.epsilon_decay)


def train_plain(c: Config, seed: int, progress: Callable[[int, PlainRun], None] | None = None,
                progress_every: int = 5_000) -> PlainRun:
    """Train one seed on the CPU, one torch thread, for c.total_steps env steps."""
    for key, default in UNSUPPORTED.items():
        if getattr(c, key) != default:
            raise ValueError(f"the plain loop does not implement {key}={getattr(c, key)!r}")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    env = gym.make(c.env_id)
    obs, _ = env.reset(seed=seed)
    obs_dim, n_actions = env.observation_space.shape[0], int(env.action_space.n)
    net, target = QNet(c, obs_dim, n_actions), QNet(c, obs_dim, n_actions)
    target.load_state_dict(net.state_dict())
    opt_cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(net.parameters(), lr=c.lr)
    C = c.buffer_size
    mem_obs = np.zeros((C, obs_dim), np.float32)
    mem_next = np.zeros((C, obs_dim), np.float32)
    mem_action = np.zeros(C, np.int64)
    mem_reward = np.zeros(C, np.float32)
    mem_stop = np.zeros(C, np.float32)  # 1 where the target must not bootstrap
    ptr = count = episodes = 0
    run = PlainRun(c.total_steps, 0.0)
    episode_return = 0.0
    for step in range(1, c.total_steps + 1):
        # act
        if rng.random() < epsilon(c, step, episodes):
            action = int(rng.integers(n_actions))
        else:
            with torch.no_grad():
                action = int(net(torch.as_tensor(obs)).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        episode_return += float(reward)
        # store
        stop = (terminated and c.terminal_masking) or (truncated and c.truncation == "terminal")
        mem_obs[ptr], mem_next[ptr], mem_action[ptr] = obs, next_obs, action
        mem_reward[ptr], mem_stop[ptr] = reward, float(stop)
        ptr, count = (ptr + 1) % C, min(count + 1, C)
        obs = next_obs
        if terminated or truncated:
            run.episode_returns.append(episode_return)
            episode_return, episodes = 0.0, episodes + 1
            obs, _ = env.reset()
        # learn
        if step > c.learning_starts and step % c.train_frequency == 0 and count >= c.batch_size:
            for _ in range(c.gradient_steps):
                idx = rng.integers(count, size=c.batch_size)
                s, s2 = torch.as_tensor(mem_obs[idx]), torch.as_tensor(mem_next[idx])
                a, r = torch.as_tensor(mem_action[idx]), torch.as_tensor(mem_reward[idx])
                stop_b = torch.as_tensor(mem_stop[idx])
                with torch.no_grad():
                    nt = (net if c.target == "none" else target)(s2)
                    if c.double_dqn:
                        nv = nt.gather(1, net(s2).argmax(1, keepdim=True))[:, 0]
                    else:
                        nv = nt.max(1).values
                    y = c.reward_scale * r + c.gamma * (1 - stop_b) * nv
                q = net(s).gather(1, a[:, None])[:, 0]
                loss = F.smooth_l1_loss(q, y) if c.loss == "huber" else F.mse_loss(q, y)
                opt.zero_grad()
                loss.backward()
                if c.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(net.parameters(), c.max_grad_norm)
                opt.step()
                if c.target == "soft":
                    with torch.no_grad():
                        for tp, p in zip(target.parameters(), net.parameters(), strict=True):
                            tp.lerp_(p, c.tau)
                run.q_means.append(float(q.detach().mean()))
        # sync target
        if c.target == "hard_steps" and step % c.target_period == 0:
            target.load_state_dict(net.state_dict())
        elif c.target == "hard_episodes" and (terminated or truncated) \
                and episodes % c.target_period == 0:
            target.load_state_dict(net.state_dict())
        if progress is not None and step % progress_every == 0:
            progress(step, run)
    env.close()
    run.seconds = time.perf_counter() - start
    return run
