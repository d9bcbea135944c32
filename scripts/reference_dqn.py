"""An independent single-seed DQN in plain torch (no dqn/ code), to cross-check findings.

`python scripts/reference_dqn.py huber 0 20000` reproduced the loss study's Huber blow-up
(mean Q 2.4e6 and returns ~9.5 by 20k steps, seeds 0 and 1) while `mse` learned (mean Q 86,
recent return 395). Same recipe as the default config: 64x64 ReLU, Adam 1e-3, memory 5k,
batch 32, learning after 64 steps, train every 4 steps, target copy every 25 steps,
epsilon 0.05 + 0.95 exp(-t / 2000), gamma 0.99.

    python scripts/reference_dqn.py {huber,mse} SEED STEPS
"""

from __future__ import annotations

import collections
import math
import random
import sys

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def q_net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 2))


def main(loss_kind: str, seed: int, steps: int) -> None:
    torch.set_num_threads(1)
    random.seed(seed)
    torch.manual_seed(seed)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    net, target = q_net(), q_net()
    target.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    memory: collections.deque = collections.deque(maxlen=5000)
    q_means: list[float] = []
    returns: list[float] = []
    episode_return = 0.0
    for t in range(1, steps + 1):
        # act
        eps = 0.05 + 0.95 * math.exp(-t / 2000)
        with torch.no_grad():
            greedy = int(net(torch.as_tensor(obs)).argmax())
        action = random.randrange(2) if random.random() < eps else greedy
        next_obs, reward, terminated, truncated, _ = env.step(action)
        episode_return += reward
        # store
        memory.append((obs, action, reward, next_obs, terminated))
        obs = next_obs
        if terminated or truncated:
            returns.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()
        # learn
        if t > 64 and t % 4 == 0:
            batch = random.sample(memory, 32)
            s, a, r, s2, done = (torch.as_tensor(np.array(x), dtype=torch.float32)
                                 for x in zip(*batch, strict=True))
            with torch.no_grad():
                y = r + 0.99 * (1 - done) * target(s2).max(1).values
            q = net(s).gather(1, a.long()[:, None])[:, 0]
            loss = F.smooth_l1_loss(q, y) if loss_kind == "huber" else F.mse_loss(q, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            q_means.append(float(q.detach().mean()))
        # sync target
        if t % 25 == 0:
            target.load_state_dict(net.state_dict())
        if t % 5000 == 0:
            print(f"{loss_kind} seed {seed} step {t}: mean Q {np.mean(q_means[-100:]):.1f}, "
                  f"recent return {np.mean(returns[-10:]):.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
