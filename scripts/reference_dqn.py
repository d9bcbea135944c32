"""An independent single-seed DQN in plain torch (dqn.core.plain: torch.nn, torch.optim, a numpy
replay; none of dqn/'s networks, optimizer, replay or loop), to cross-check findings.

`python scripts/reference_dqn.py huber 0 20000` reproduces the loss study's Huber blow-up:
mean Q 2.7e6 and recent return 9.4 by 20k steps, while `mse` learns (mean Q 67, recent return
149). The first version of this script gave 2.4e6 / 9.5 and 86 / 395 with other random
streams. The recipe of that time is kept here: 64x64 ReLU without a dueling
head, Adam 1e-3, memory 5k, batch 32, learning after 64 steps, train every 4 steps, target
copy every 25 steps, epsilon 0.05 + 0.95 exp(-t / 2000), gamma 0.99.

    python scripts/reference_dqn.py {huber,mse} SEED STEPS
"""

from __future__ import annotations

import sys

import numpy as np

from dqn.base.config import Config
from dqn.core.plain import PlainRun, train_plain

RECIPE = {"dueling": False, "gamma": 0.99, "epsilon_end": 0.05}


def main(loss_kind: str, seed: int, steps: int) -> None:
    config = Config(loss=loss_kind, total_steps=steps, device="cpu", **RECIPE)

    def report(step: int, run: PlainRun) -> None:
        print(f"{loss_kind} seed {seed} step {step}: mean Q {np.mean(run.q_means[-100:]):.1f}, "
              f"recent return {np.mean(run.episode_returns[-10:]):.1f}", flush=True)

    train_plain(config, seed, progress=report)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
