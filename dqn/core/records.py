"""Tidy records of a training run: episodes, greedy evaluations and diagnostics.

Column names are the same words in these tables, the study CSVs, the analysis and the figures.
Diagnostics accumulate on the device and reach the host only at the logging interval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from dqn.base.schema import COLUMNS, DIAGNOSTICS
from dqn.core.agent import Agent, UpdateStats

EPISODE_COLUMNS = COLUMNS["episodes"]
EVAL_COLUMNS = COLUMNS["evals"]
DIAGNOSTIC_COLUMNS = COLUMNS["diagnostics"]


@dataclass
class FinalWeights:
    """Every seed's online network at the end of training: enough to act greedily again."""

    spec: dict[str, Any]  # the fields of networks.NetSpec
    params: np.ndarray  # (S, P) float32, the flat parameter buffer
    stats: np.ndarray  # (S, n_stats) float32, BatchNorm running statistics

    @staticmethod
    def of(agent: Agent) -> FinalWeights:
        return FinalWeights(asdict(agent.spec), agent.params.detach().cpu().numpy().copy(),
                            agent.stats.detach().cpu().numpy().copy())


@dataclass
class Records:
    """What one training run produced; returns are in environment units."""

    episodes: pd.DataFrame
    evals: pd.DataFrame
    diagnostics: pd.DataFrame
    wall_time_s: float
    seed_steps_per_s: float
    diverged_seeds: list[int] = field(default_factory=list)
    weights: FinalWeights | None = None  # None from runs that do not keep them


class Recorder:
    """Collects records for S seeds without a per-seed Python loop."""

    def __init__(self, seeds: list[int], device: torch.device) -> None:
        S = len(seeds)
        self.seeds = np.asarray(seeds)
        self.ep_return = np.zeros(S)  # (S,)
        self.ep_length = np.zeros(S, dtype=np.int64)  # (S,)
        self.ep_count = np.zeros(S, dtype=np.int64)  # (S,)
        self.last_returns = np.full((S, 10), np.nan)  # (S, 10) for the progress bar
        self.sums = torch.zeros(S, len(DIAGNOSTICS), device=device)  # (S, 4)
        self.counts = torch.zeros(S, device=device)  # (S,)
        self.diverged = torch.zeros(S, dtype=torch.bool, device=device)  # (S,)
        self._episodes: list[dict[str, np.ndarray]] = []
        self._evals: list[dict[str, np.ndarray]] = []
        self._diagnostics: list[dict[str, np.ndarray]] = []
        self._device: tuple[torch.Tensor, ...] | None = None  # episode accounting on the device
        self._pending: list[tuple] = []  # its per-step tensors, until flush
        self.steps = 0

    def episode_step(self, step: int, reward: np.ndarray | torch.Tensor,
                     done: np.ndarray | torch.Tensor, autoreset: np.ndarray | torch.Tensor,
                     epsilon: torch.Tensor) -> None:
        """Account one env step; emit a row per seed whose episode just ended. Host arrays are
        accounted at once; device tensors (an env on the device) stay there until `flush`."""
        self.steps = step
        if isinstance(reward, torch.Tensor):
            self._on_device(step, reward, done, autoreset, epsilon)
            return
        live = ~autoreset
        self.ep_return += np.where(live, reward, 0.0)
        self.ep_length += live
        if done.any():
            idx = np.flatnonzero(done)
            self.ep_count[idx] += 1
            self._episodes.append({
                "seed": self.seeds[idx], "episode": self.ep_count[idx].copy(),
                "env_step": np.full(len(idx), step), "return": self.ep_return[idx].copy(),
                "length": self.ep_length[idx].copy(),
                "epsilon": epsilon.cpu().numpy()[idx],
            })
            self.last_returns[idx] = np.roll(self.last_returns[idx], 1, axis=1)
            self.last_returns[idx, 0] = self.ep_return[idx]
            self.ep_return[idx] = 0.0
            self.ep_length[idx] = 0

    def _on_device(self, step: int, reward: torch.Tensor, done: torch.Tensor,
                   autoreset: torch.Tensor, epsilon: torch.Tensor) -> None:
        """episode_step's accounting as device ops (new tensors, never in place, so the
        pending references stay as they were), kept for flush: no step waits for the device."""
        if self._device is None:  # (S,) return, length and finished episodes, on the device
            self._device = (torch.zeros_like(reward, dtype=torch.float64),
                            torch.zeros_like(done, dtype=torch.long),
                            torch.as_tensor(self.ep_count, device=reward.device))
        ret, length, count = self._device
        live = ~autoreset
        ret = ret + torch.where(live, reward.to(torch.float64), 0.0)
        length = length + live
        count = count + done
        self._pending.append((step, done, ret, length, count, epsilon))
        self._device = (torch.where(done, 0.0, ret), torch.where(done, 0, length), count)

    def flush(self) -> None:
        """Emit the episode rows the device accounted since the last flush (one copy)."""
        if not self._pending:
            return
        steps = np.array([p[0] for p in self._pending])  # (T,)
        done, ret, length, count, eps = (torch.stack([p[i] for p in self._pending]).cpu().numpy()
                                         for i in range(1, 6))  # (T, S) each
        self._pending = []
        t, s = np.nonzero(done)  # by step, then seed: the host path's order
        if len(t):
            self._episodes.append({"seed": self.seeds[s], "episode": count[t, s],
                                   "env_step": steps[t], "return": ret[t, s],
                                   "length": length[t, s], "epsilon": eps[t, s]})
        for row in np.flatnonzero(done.any(axis=1)):  # the progress bar's last returns
            idx = np.flatnonzero(done[row])
            self.last_returns[idx] = np.roll(self.last_returns[idx], 1, axis=1)
            self.last_returns[idx, 0] = ret[row, idx]
        self.ep_count = count[-1].copy()

    def update(self, s: UpdateStats) -> None:
        """Accumulate one gradient step's diagnostics on the device."""
        values = torch.stack([s.loss, s.q_mean, s.td_abs, s.grad_norm], dim=1)  # (S, 4)
        self.sums += torch.where(s.updated[:, None], values, 0.0)
        self.counts += s.updated
        self.diverged |= s.updated & ~torch.isfinite(s.loss)

    def diagnostics(self, step: int, epsilon: torch.Tensor) -> None:
        """Emit the mean diagnostics of the interval since the last call, one row per seed."""
        self.flush()
        counts = self.counts.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.sums.cpu().numpy() / counts[:, None]  # NaN before learning starts
        row = {"seed": self.seeds, "env_step": np.full(len(self.seeds), step)}
        row |= {name: means[:, i] for i, name in enumerate(DIAGNOSTICS)}
        row |= {"epsilon": epsilon.cpu().numpy(), "diverged": self.diverged.cpu().numpy()}
        self._diagnostics.append(row)
        self.sums.zero_()
        self.counts.zero_()

    def evaluation(self, step: int, returns: np.ndarray) -> None:
        """Record each seed's mean greedy return at env step `step`."""
        self._evals.append({"seed": self.seeds, "env_step": np.full(len(self.seeds), step),
                            "return": returns, "diverged": self.diverged.cpu().numpy()})

    def recent(self) -> dict[str, float]:
        """Headline numbers for a progress bar."""
        self.flush()
        out = {"return": float(np.nanmean(self.last_returns)) if self._episodes else float("nan")}
        if self._evals:
            out["eval"] = float(np.mean(self._evals[-1]["return"]))
        return out

    def finish(self, wall_time_s: float, weights: FinalWeights | None = None) -> Records:
        """The run's tables, in stable (seed, time) order, and the final weights."""
        self.flush()
        def table(chunks: list[dict[str, np.ndarray]], columns: tuple[str, ...]) -> pd.DataFrame:
            if not chunks:
                return pd.DataFrame({c: [] for c in columns})
            df = pd.DataFrame({c: np.concatenate([ch[c] for ch in chunks]) for c in columns})
            return df.sort_values(["seed", "env_step"], kind="stable").reset_index(drop=True)

        diverged = self.seeds[self.diverged.cpu().numpy()].tolist()
        return Records(
            episodes=table(self._episodes, EPISODE_COLUMNS),
            evals=table(self._evals, EVAL_COLUMNS),
            diagnostics=table(self._diagnostics, DIAGNOSTIC_COLUMNS),
            wall_time_s=wall_time_s,
            seed_steps_per_s=len(self.seeds) * self.steps / max(wall_time_s, 1e-9),
            diverged_seeds=[int(s) for s in diverged],
            weights=weights,
        )
