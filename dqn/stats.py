"""Per-seed scores and per-variant aggregates of a study's results (no torch, no gymnasium).

Every number the figures, `summary.csv` and `REPORT.md` show comes from here, so one metric
has one definition and one name everywhere:

- final: mean greedy-evaluation return over the last K evaluations of a seed;
- final_norm: final mapped to [0, 1] with the environment's return range (`ENVS`);
- auc: area under the normalised evaluation curve divided by its step span, in [0, 1];
- steps_to_threshold / reached: first evaluation step at or above the solved threshold
  (NaN and reached=False when never: the seed is censored);
- collapsed: reached the threshold, later fell below half of it on the normalised scale;
- diverged: the seed's loss went NaN/inf.

A study's variants may run on different environments (e.g. CartPole-v0 vs v1): every per-seed
score then uses its variant's own environment, and comparisons across variants use final_norm.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.integrate import trapezoid


class EnvSpec(NamedTuple):
    """Return range and solved threshold of an environment."""

    min_return: float
    max_return: float
    threshold: float


ENVS: dict[str, EnvSpec] = {
    "CartPole-v1": EnvSpec(0.0, 500.0, 475.0),
    "CartPole-v0": EnvSpec(0.0, 200.0, 195.0),
    # Acrobot's returns are negative (-1 per step, 500-step limit), so normalising by the
    # maximum alone is meaningless: every env is normalised as (x - min) / (max - min).
    "Acrobot-v1": EnvSpec(-500.0, 0.0, -100.0),
}

CSV_NAMES = ("episodes", "evals", "diagnostics")
CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0
VERDICTS = ("baseline", "better", "worse", "no clear difference", "no data")
# One env for every variant, or one per variant (a variant missing from the mapping: unknown).
EnvIds = str | Mapping[str, str | None] | None


def env_of(env_ids: EnvIds, variant: str) -> str | None:
    """The environment of one variant under `env_ids` (see EnvIds)."""
    return env_ids.get(variant) if isinstance(env_ids, Mapping) else env_ids


def envs_differ(env_ids: EnvIds) -> bool:
    """Whether `env_ids` names more than one environment (returns then compare normalised)."""
    return isinstance(env_ids, Mapping) and len(set(env_ids.values()) - {None}) > 1


def normalise(x: Any, env_id: str | None) -> np.ndarray:
    """Map returns to [0, 1] with the env's (min, max) range; NaN for an unknown env."""
    x = np.asarray(x, dtype=float)
    spec = ENVS.get(env_id or "")
    if spec is None:
        return np.full_like(x, np.nan)
    return (x - spec.min_return) / (spec.max_return - spec.min_return)


def iqm(x: Any, axis: int | None = None) -> Any:
    """Interquartile mean: the mean of the middle 50% (scipy's trim_mean, 25% cut each side)."""
    return sps.trim_mean(x, 0.25, axis=axis)


def _finite(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    return x[np.isfinite(x)]


# scipy 1.15 renamed random_state to rng; pyproject allows older scipy.
_RNG_KW = "rng" if "rng" in inspect.signature(sps.bootstrap).parameters else "random_state"


def _bootstrap(data: tuple[np.ndarray, ...], statistic: Callable, n_resamples: int,
               seed: int, confidence: float) -> tuple[float, float]:
    res = sps.bootstrap(data, statistic, n_resamples=n_resamples, method="percentile",
                        confidence_level=confidence, vectorized=True,
                        **{_RNG_KW: np.random.default_rng(seed)})
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_ci(x: Any, statistic: Callable = np.mean, n_resamples: int = N_RESAMPLES,
                 seed: int = SEED, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap CI of `statistic` (vectorised, takes `axis`) over the finite x.

    Seeded, so identical inputs give identical intervals. No data gives (NaN, NaN); a single
    value or a constant sample gives (x, x), where resampling cannot show any spread.
    """
    x = _finite(x)
    if x.size == 0:
        return math.nan, math.nan
    if np.all(x == x[0]):
        value = float(statistic(x, axis=-1))
        return value, value
    return _bootstrap((x,), statistic, n_resamples, seed, confidence)


def _p_greater(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    # Vectorised over leading (resample) axes, as scipy.stats.bootstrap requires.
    x = np.moveaxis(np.asarray(x), axis, -1)[..., :, None]
    y = np.moveaxis(np.asarray(y), axis, -1)[..., None, :]
    return np.mean((x > y) + 0.5 * (x == y), axis=(-2, -1))


def prob_improvement(x: Any, y: Any) -> float:
    """P(X > Y) + P(X = Y) / 2 = Mann-Whitney U of x over y / (n m); NaN if a sample is empty."""
    x, y = _finite(x), _finite(y)
    if x.size == 0 or y.size == 0:
        return math.nan
    return float(sps.mannwhitneyu(x, y).statistic / (x.size * y.size))


def prob_improvement_ci(x: Any, y: Any, n_resamples: int = N_RESAMPLES, seed: int = SEED,
                        confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Bootstrap CI of prob_improvement, resampling x and y independently (seeded).

    Needs at least two values per sample: with one seed there is no spread to resample, and
    an interval of zero width would turn a single lucky seed into a "better" verdict.
    """
    x, y = _finite(x), _finite(y)
    if x.size < 2 or y.size < 2:
        return math.nan, math.nan
    if np.all(x == x[0]) and np.all(y == y[0]):
        p = prob_improvement(x, y)
        return p, p
    return _bootstrap((x, y), _p_greater, n_resamples, seed, confidence)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values in input order; NaNs stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    # The running max makes adjusted p-values monotone in the raw ones, as Holm's step-down
    # procedure requires (a smaller raw p can never get a larger adjusted p).
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def verdict(p_lo: float, p_hi: float, is_baseline: bool = False) -> str:
    """Verdict word from the CI of P(improvement over baseline)."""
    if is_baseline:
        return "baseline"
    if p_lo > 0.5:
        return "better"
    if p_hi < 0.5:
        return "worse"
    return "no clear difference"


def median_steps_to_threshold(steps: Any, reached: Any) -> float:
    """The env step by which half of the seeds had reached the threshold (censoring-aware).

    Censored seeds (never reached) count as later than any step, so the median exists only
    when at most half are censored; otherwise it is NaN ("not reached").
    """
    steps = np.asarray(steps, dtype=float)
    reached = np.asarray(reached, dtype=bool)
    n = steps.size
    hits = np.sort(steps[reached])
    k = math.ceil(n / 2)
    if n == 0 or hits.size < k:
        return math.nan
    return float(hits[k - 1])


def _seed_scores(curve: pd.DataFrame, env_id: str | None, k: int) -> dict[str, Any]:
    steps = curve["env_step"].to_numpy(dtype=float)
    ret = curve["return"].to_numpy(dtype=float)
    norm = normalise(ret, env_id)
    final = float(np.nanmean(ret[-k:])) if np.isfinite(ret[-k:]).any() else math.nan
    ok = np.isfinite(norm)
    if ok.sum() >= 2 and steps[ok][-1] > steps[ok][0]:
        auc = float(trapezoid(norm[ok], steps[ok]) / (steps[ok][-1] - steps[ok][0]))
    else:
        auc = float(norm[ok][0]) if ok.any() else math.nan
    spec = ENVS.get(env_id or "")
    reached_at = math.nan
    collapsed = False
    if spec is not None:
        hit = np.flatnonzero(ret >= spec.threshold)
        if hit.size:
            reached_at = float(steps[hit[0]])
            # "Half the threshold" on the normalised scale, so it means the same for
            # Acrobot's negative returns (threshold -100 -> 0.8, half -> 0.4, i.e. -300) as
            # for CartPole (475 -> 237.5).
            half = 0.5 * float(normalise(spec.threshold, env_id))
            collapsed = bool(np.any(norm[hit[0] + 1:] < half))
    diverged = bool(curve["diverged"].astype(bool).any()) if "diverged" in curve else False
    return {
        "final": final,
        "final_norm": float(normalise(final, env_id)),
        "auc": auc,
        "steps_to_threshold": reached_at,
        "reached": not math.isnan(reached_at),
        "collapsed": collapsed,
        "diverged": diverged,
        "evals": len(curve),
        "last_step": float(steps[-1]) if steps.size else math.nan,
    }


SCORE_COLUMNS = ["variant", "seed", "final", "final_norm", "auc", "steps_to_threshold",
                 "reached", "collapsed", "diverged", "evals", "last_step"]


def run_scores(evals: pd.DataFrame, env_id: EnvIds, k: int = 3) -> pd.DataFrame:
    """One row per (variant, seed): the per-run scores defined in this module's docstring.

    `env_id` is the study's environment, or a variant -> environment mapping.
    """
    rows = []
    for (variant, seed), curve in evals.groupby(["variant", "seed"], sort=False):
        curve = curve.sort_values("env_step", kind="stable")
        scores = _seed_scores(curve, env_of(env_id, variant), k)
        rows.append({"variant": variant, "seed": seed, **scores})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


@dataclass
class Study:
    """A study directory's run.json and CSVs (None when missing) and what is incomplete.

    env_ids maps each run.json variant to its environment; env_id is the one environment of
    all variants, None when there is none or when they differ (see `envs`).
    """

    path: Path
    name: str
    run: dict[str, Any] | None
    episodes: pd.DataFrame | None
    evals: pd.DataFrame | None
    diagnostics: pd.DataFrame | None
    variants: list[str]
    baseline: str | None
    env_id: str | None
    question: str
    incomplete: list[str] = field(default_factory=list)
    incomplete_variants: set[str] = field(default_factory=set)
    env_ids: dict[str, str] = field(default_factory=dict)

    @property
    def mixed_env(self) -> bool:
        """Whether the variants run on different environments."""
        return envs_differ(self.env_ids)

    @property
    def envs(self) -> EnvIds:
        """What run_scores/summarize_scores take: the per-variant mapping when envs differ."""
        return self.env_ids if self.mixed_env else self.env_id

    def env_of(self, variant: str) -> str | None:
        """The environment a variant ran on (the study's when run.json does not say)."""
        return env_of(self.envs, variant)


def _read_csv(path: Path, incomplete: list[str]) -> pd.DataFrame | None:
    if not path.exists():
        incomplete.append(f"{path.name} missing")
        return None
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        incomplete.append(f"{path.name} unreadable ({exc.__class__.__name__})")
        return None
    if "variant" in df:
        df["variant"] = df["variant"].astype(str)
    return df


def load_study(study_dir: Path) -> Study:
    """Read run.json and the CSVs of results/<study>/, listing every gap in `incomplete`."""
    study_dir = Path(study_dir)
    incomplete: list[str] = []
    run = None
    run_path = study_dir / "run.json"
    if run_path.exists():
        try:
            run = json.loads(run_path.read_text())
        except json.JSONDecodeError:
            incomplete.append("run.json unreadable")
    else:
        incomplete.append("run.json missing")
    frames = {name: _read_csv(study_dir / f"{name}.csv", incomplete) for name in CSV_NAMES}
    evals = frames["evals"]
    if evals is not None and not {"variant", "seed", "env_step", "return"} <= set(evals):
        incomplete.append("evals.csv lacks columns variant/seed/env_step/return")
        evals = frames["evals"] = None

    run_variants: dict[str, Any] = (run or {}).get("variants", {}) or {}
    variants = list(run_variants)
    csv_variants = [] if evals is None else list(dict.fromkeys(evals["variant"]))
    bad: set[str] = set()
    for v in csv_variants:
        if v not in run_variants:
            variants.append(v)
            if run is not None:
                incomplete.append(f"variant {v}: in evals.csv but not in run.json")
                bad.add(v)
    for v, info in run_variants.items():
        if evals is None:
            bad.add(v)
            continue
        got = evals[evals["variant"] == v]
        if got.empty:
            incomplete.append(f"variant {v}: no rows in evals.csv")
            bad.add(v)
            continue
        missing = sorted(set(info.get("seeds", [])) - set(got["seed"]))
        if missing:
            incomplete.append(f"variant {v}: seeds {missing} missing from evals.csv")
            bad.add(v)
        cfg = info.get("config", {})
        total, every = cfg.get("total_steps"), cfg.get("eval_every", 0)
        if total:
            # Half an eval interval of slack tolerates lockstep rounding of the final step
            # but still catches a run stopped before its last scheduled evaluation.
            last = got.groupby("seed")["env_step"].max()
            short = sorted(int(s) for s in last.index[last < total - 0.5 * (every or 0)])
            if short:
                incomplete.append(f"variant {v}: seeds {short} stop before total_steps={total}")
                bad.add(v)

    baseline = (run or {}).get("baseline") or (variants[0] if variants else None)
    if baseline in variants:
        variants.remove(baseline)
        variants.insert(0, baseline)
    env_ids = {v: info["config"]["env_id"] for v, info in run_variants.items()
               if (info.get("config") or {}).get("env_id") is not None}
    one_env = set(env_ids.values())
    return Study(
        path=study_dir, name=(run or {}).get("study") or study_dir.name, run=run,
        episodes=frames["episodes"], evals=evals, diagnostics=frames["diagnostics"],
        variants=variants, baseline=baseline,
        env_id=one_env.pop() if len(one_env) == 1 else None,
        question=str((run or {}).get("question", "")).strip(),
        incomplete=incomplete, incomplete_variants=bad, env_ids=env_ids,
    )


def study_scores(study: Study, k: int = 3) -> pd.DataFrame:
    """run_scores of a loaded study, with run.json's diverged_seeds folded into `diverged`."""
    if study.evals is None:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    scores = run_scores(study.evals, study.envs, k)
    for v, info in ((study.run or {}).get("variants") or {}).items():
        flagged = scores["variant"].eq(v) & scores["seed"].isin(info.get("diverged_seeds", []))
        scores.loc[flagged, "diverged"] = True
    return scores


def _ci_columns(prefix: str, x: np.ndarray, stat: Callable, n_resamples: int,
                seed: int) -> dict[str, float]:
    lo, hi = bootstrap_ci(x, stat, n_resamples=n_resamples, seed=seed)
    value = float(stat(x)) if x.size else math.nan
    return {prefix: value, f"{prefix}_lo": lo, f"{prefix}_hi": hi}


def summarize_scores(scores: pd.DataFrame, variants: Sequence[str], baseline: str | None,
                     env_id: EnvIds, incomplete_variants: set[str] | None = None,
                     n_resamples: int = N_RESAMPLES, seed: int = SEED) -> pd.DataFrame:
    """One row per variant (in `variants` order) from run_scores' per-seed rows.

    `env_id` as for run_scores. When the variants' environments differ, P(improvement) and
    the Welch test compare final_norm instead of raw final returns (column `compared_on`).
    """
    compared_on = "final_norm" if envs_differ(env_id) else "final"
    incomplete_variants = incomplete_variants or set()
    base = _finite(scores.loc[scores["variant"] == baseline, compared_on])
    rows = []
    for v in variants:
        s = scores[scores["variant"] == v]
        spec = ENVS.get(env_of(env_id, v) or "")
        final = _finite(s["final"])
        row: dict[str, Any] = {"variant": v, "seeds": len(s)}
        row.update(_ci_columns("final_iqm", final, iqm, n_resamples, seed))
        row.update(_ci_columns("final_mean", final, np.mean, n_resamples, seed))
        row.update(_ci_columns("final_norm_iqm", _finite(s["final_norm"]), iqm, n_resamples,
                               seed))
        row["solved_fraction"] = (float(np.mean(final >= spec.threshold))
                                  if spec is not None and final.size else math.nan)
        row.update(_ci_columns("auc_iqm", _finite(s["auc"]), iqm, n_resamples, seed))
        row["median_steps_to_threshold"] = median_steps_to_threshold(
            s["steps_to_threshold"], s["reached"])
        row["reached"] = int(s["reached"].sum())
        row["collapses"] = int(s["collapsed"].sum())
        row["diverged"] = int(s["diverged"].sum())
        is_base = v == baseline
        x = _finite(s[compared_on])
        p, (lo, hi), welch = math.nan, (math.nan, math.nan), math.nan
        if not is_base and x.size and base.size:
            p = prob_improvement(x, base)
            lo, hi = prob_improvement_ci(x, base, n_resamples=n_resamples, seed=seed)
            if x.size >= 2 and base.size >= 2:
                welch = float(sps.ttest_ind(x, base, equal_var=False).pvalue)
        row.update(compared_on=compared_on, p_improvement=p, p_improvement_lo=lo,
                   p_improvement_hi=hi, welch_p=welch)
        row["verdict"] = verdict(lo, hi, is_base) if len(s) else "no data"
        row["complete"] = len(s) > 0 and v not in incomplete_variants
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in SUMMARY_COLUMNS if c != "welch_p_holm"])
    # Holm over the non-baseline variants only: the baseline has no test (NaN) and holm()
    # leaves NaNs out of the family size.
    out["welch_p_holm"] = holm(out["welch_p"].to_numpy(dtype=float))
    return out[SUMMARY_COLUMNS]


SUMMARY_COLUMNS = [
    "variant", "seeds", "final_iqm", "final_iqm_lo", "final_iqm_hi", "final_mean",
    "final_mean_lo", "final_mean_hi", "final_norm_iqm", "final_norm_iqm_lo",
    "final_norm_iqm_hi", "solved_fraction", "auc_iqm", "auc_iqm_lo", "auc_iqm_hi",
    "median_steps_to_threshold", "reached", "collapses", "diverged", "compared_on",
    "p_improvement", "p_improvement_lo", "p_improvement_hi", "welch_p", "welch_p_holm",
    "verdict", "complete",
]


def summarize_study(study: Study, k: int = 3, n_resamples: int = N_RESAMPLES,
                    seed: int = SEED) -> pd.DataFrame:
    """summarize for an already loaded Study."""
    return summarize_scores(study_scores(study, k), study.variants, study.baseline,
                            study.envs, study.incomplete_variants, n_resamples, seed)


def summarize(study_dir: Path, k: int = 3, n_resamples: int = N_RESAMPLES,
              seed: int = SEED) -> pd.DataFrame:
    """One row per variant of results/<study>/ (baseline first); see SUMMARY_COLUMNS."""
    return summarize_study(load_study(study_dir), k, n_resamples, seed)


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a sibling temp file, then os.replace it onto path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_summary(study_dir: Path, k: int = 3, summary: pd.DataFrame | None = None,
                  n_resamples: int = N_RESAMPLES) -> Path:
    """Write results/<study>/summary.csv atomically (computing the summary unless given)."""
    if summary is None:
        summary = summarize(study_dir, k, n_resamples)
    return write_atomic(Path(study_dir) / "summary.csv",
                        lambda tmp: summary.to_csv(tmp, index=False, float_format="%.6g"))
