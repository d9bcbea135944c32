"""How much memory a unit of work needs, and how much the device has: checked before training,
so a run that cannot fit stops at once instead of after hours of other units.

The estimate is deliberately simple and errs high: replay rings, parameters with their target,
Adam state and gradient copies, one batch of activations, the sub-environments and the
records, per seed, plus the process itself (torch and the libraries).
"""

from __future__ import annotations

import os

import torch

from dqn.base.config import Config
from dqn.core.netspec import NetSpec

PROCESS_BYTES = 600 * 2**20  # python, torch, gymnasium, pandas loaded: about 400-450 MiB measured
PARAM_COPIES = 8  # params, target, Adam's two moments, gradient, clipped gradient, temporaries
# per sub-env; measured: 5 KiB for Acrobot's sync vector env, 0.1 KiB for CartPole's own
ENV_BYTES = {"sync": 5 * 2**10, "vector": 2**10}
ROW_BYTES = 200  # one record row, as numpy, DataFrame and CSV text at once


def unit_bytes(config: Config, obs_dim: int, n_actions: int, n_seeds: int,
               vectorised_env: bool) -> int:
    """Bytes a unit of `n_seeds` seeds of `config` needs, process included (an overestimate)."""
    spec = NetSpec.from_config(config, obs_dim, n_actions)
    replay = (config.buffer_size + 1) * (2 * obs_dim * 4 + 8 + 4 + 2)
    params = PARAM_COPIES * 4 * (spec.n_params + spec.n_stats)
    width = obs_dim + sum(config.hidden) + 2 * n_actions * spec.atoms  # C51: K per action
    activations = 6 * 4 * config.batch_size * width
    envs = (1 + config.eval_episodes) * ENV_BYTES["vector" if vectorised_env else "sync"]
    # episodes end after 8 steps at the earliest; diagnostics every log_every steps
    rows = config.total_steps // 8 + config.total_steps // config.log_every + 1
    records = rows * ROW_BYTES
    return PROCESS_BYTES + n_seeds * (replay + params + activations + envs + records)


def available_bytes(device: torch.device) -> int | None:
    """Free memory on `device` (MemAvailable for the CPU), None when it cannot be told."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
