"""Synthetic results/<study>/ directories for the analysis tests (no training involved).

Curves have a realistic shape: a noisy logistic rise towards the env's maximum return, one
variant learning faster, one whose seeds collapse after solving (and one of them diverges).
Variants may run on different environments (env_id per variant), and `flat` pins a variant's
every evaluation to one return, for hand-checkable scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dqn.store.journal import migrate

QUESTION = (
    "Does the target network matter? We compare the default hard-copied target network with "
    "no target network at all and with a Polyak-averaged soft target, on {env_id}, and "
    "ask whether removing it makes learning unstable (collapses after solving) or slower."
)
DEFAULT_VARIANTS = ("baseline", "no_target", "soft_target")
RANGES = {"CartPole-v1": (9.0, 500.0), "CartPole-v0": (9.0, 200.0),
          "Acrobot-v1": (-500.0, -70.0)}


def _curve(kind: str, steps: np.ndarray, total: int, rng: np.random.Generator,
           lo: float, hi: float) -> np.ndarray:
    mid = {"baseline": 0.45, "soft_target": 0.3}.get(kind, 0.4) * total
    mid *= rng.uniform(0.85, 1.15)
    frac = 1.0 / (1.0 + np.exp(-(steps - mid) / (0.06 * total)))
    if kind == "no_target" and rng.uniform() < 0.6:
        # Collapse after solving: the return falls back to near-random play.
        start = rng.uniform(0.6, 0.8) * total
        frac = np.where(steps > start, frac * 0.2, frac)
    noise = rng.normal(0.0, 0.03, steps.size) * (hi - lo)
    return np.clip(lo + frac * (hi - lo) + noise, lo, hi)


def make_study(root: Path, name: str = "toy", variants: tuple[str, ...] = DEFAULT_VARIANTS,
               seeds: int = 5, evals: int = 20, env_id: str | dict[str, str] = "CartPole-v1",
               total_steps: int = 50_000, seed: int = 0,
               flat: dict[str, float] | None = None, record: bool = True) -> Path:
    """Write run.json, episodes.csv, evals.csv and diagnostics.csv under root/name/.

    env_id: one environment for all variants, or variant -> environment.
    flat: variant -> the return of every one of its evaluations (no learning curve).
    record: bring run.json to the store's current format (each unit's rows recorded, as the
    runner writes them); False leaves the format-1 run.json of results written before.
    """
    envs = {v: env_id if isinstance(env_id, str) else env_id[v] for v in variants}
    flat = flat or {}
    rng = np.random.default_rng(seed)
    every = total_steps // evals
    eval_steps = np.arange(1, evals + 1) * every
    log_steps = np.arange(1, 2 * evals + 1) * (total_steps // (2 * evals))
    ev, diag, eps = [], [], []
    run_variants = {}
    for v in variants:
        diverged_seeds = []
        lo, hi = RANGES[envs[v]]
        for s in range(seeds):
            if v in flat:
                ret = np.full(eval_steps.size, float(flat[v]))
            else:
                ret = np.round(_curve(v, eval_steps, total_steps, rng, lo, hi), 1)
            bad_from = total_steps * 0.9 if (v == "no_target" and s == 0) else np.inf
            if bad_from < np.inf:
                diverged_seeds.append(s)
            for step, r in zip(eval_steps, ret, strict=True):
                ev.append((name, v, s, int(step), r, bool(step >= bad_from)))
            q_scale = 30.0 if v == "no_target" else 1.0
            for step in log_steps:
                learning = step > total_steps * 0.05
                t = step / total_steps
                loss = (0.5 + 2 * t * q_scale) * rng.lognormal(0, 0.2) if learning else np.nan
                q = (1 + 60 * t) * q_scale ** t * rng.lognormal(0, 0.05) if learning else np.nan
                if step >= bad_from:
                    loss, q = np.inf, np.nan
                epsilon = max(0.05, 1 - step / (0.3 * total_steps))
                diag.append((name, v, s, int(step), loss, q, loss / 2, loss * 3, epsilon,
                             bool(step >= bad_from)))
            env_step = 0
            for e in range(30):
                length = int(rng.integers(10, 200))
                env_step += length
                eps.append((name, v, s, e, env_step, float(length), length,
                            max(0.05, 1 - env_step / 15000)))
        run_variants[v] = {
            "config": {"env_id": envs[v], "total_steps": total_steps, "eval_every": every},
            "config_hash": f"hash-{v}", "seeds": list(range(seeds)), "git_commit": "abc1234",
            "versions": {"python": "3.11.9", "torch": "2.4.0", "gymnasium": "1.0.0",
                         "numpy": "2.1.0"},
            "device": "cpu", "wall_time_s": 12.5, "seed_steps_per_s": 4000.0,
            "diverged_seeds": diverged_seeds,
        }
    out = Path(root) / name
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(ev, columns=["study", "variant", "seed", "env_step", "return", "diverged"]
                 ).to_csv(out / "evals.csv", index=False)
    pd.DataFrame(diag, columns=["study", "variant", "seed", "env_step", "loss", "q_mean",
                                "td_abs", "grad_norm", "epsilon", "diverged"]
                 ).to_csv(out / "diagnostics.csv", index=False)
    pd.DataFrame(eps, columns=["study", "variant", "seed", "episode", "env_step", "return",
                               "length", "epsilon"]).to_csv(out / "episodes.csv", index=False)
    question = QUESTION.format(env_id=" and ".join(dict.fromkeys(envs.values())))
    run = {"study": name, "question": question, "baseline": variants[0],
           "variants": run_variants}
    (out / "run.json").write_text(json.dumps(run, indent=2))
    if record:
        assert migrate(out) == []
    return out
