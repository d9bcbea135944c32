"""Learning expectations declared in study files, and the checks that turn them into tests.

Two tiers, both declared next to the study they guard:

    [expect.baseline]              # full tier (`make regress`): the study's seeds and steps
    min_final_iqm = 475            # measured: <value it was calibrated from>
    [expect.clear_memory]
    worse_than = "baseline"

    [fast]                         # fast tier (`make test`, CI): fewer seeds and/or steps
    seeds = 8
    steps = 20000
    [fast.expect.clear_memory]
    worse_than = "baseline"

Each check trains with the current code (see tests/learning/) and is computed with the
analysis modules (dqn.analysis.scoring, dqn.stats.estimators), so the scores mean the same
as in the report.
This module validates the tables as plain data and raises its own ExpectationError; the study
loader (dqn.run.studyfile) wraps that into a StudyError and lists a study's expectations.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dqn.analysis.results import load as load_results
from dqn.analysis.scoring import study_scores
from dqn.base import env_facts
from dqn.base.config import did_you_mean, is_positive_int
from dqn.base.names import unknown_key
from dqn.stats.estimators import (
    bootstrap_ci,
    iqm,
    median_steps_to_threshold,
    prob_improvement,
    prob_improvement_ci,
)

# key -> (kind, what it checks); kind "number" or "variant"
KEYS: dict[str, tuple[str, str]] = {
    "min_final_iqm": ("number", "IQM over seeds of the final greedy score is at least this"),
    "min_solved_fraction": ("number", "fraction of seeds whose final score reaches the "
                                      "solved threshold is at least this"),
    "max_median_steps_to_threshold": ("number", "median env steps to first reach the solved "
                                                "threshold is at most this"),
    "worse_than": ("variant", "upper end of the 95% CI of P(this > that) is below 0.5"),
    "better_than": ("variant", "lower end of the 95% CI of P(this > that) is above 0.5"),
    "auc_worse_than": ("variant", "as worse_than, on the AUC (learning speed)"),
    "auc_better_than": ("variant", "as better_than, on the AUC (learning speed)"),
}
FAST_KEYS = ("seeds", "steps", "expect")


class ExpectationError(ValueError):
    """A bad expectation table; the message names the file, the table, the key and the value."""


@dataclass(frozen=True)
class Expectation:
    """One declared expectation, with the seeds and steps its tier trains with."""

    study: str
    tier: str  # "fast" or "full"
    variant: str
    key: str
    value: Any
    seeds: int
    steps: int | None  # None: the study's own total_steps

    @property
    def id(self) -> str:
        return f"{self.study}:{self.tier}:{self.variant}.{self.key}={self.value}"

    def variants(self) -> list[str]:
        """Variants that must be trained to check this."""
        other = [self.value] if KEYS[self.key][0] == "variant" else []
        return [self.variant, *other]


def validate(expect: Mapping[str, Any], fast: Mapping[str, Any], variants: Collection[str],
             where: str) -> None:
    """Check a study file's [expect.*] and [fast] tables against its `variants`; raise
    ExpectationError naming `where` (the file), the table, the key and the value."""
    _validate_tables(expect, "expect", variants, where)
    if (problem := unknown_key(fast, FAST_KEYS)) is not None:
        raise ExpectationError(f"{where}: [fast] {problem}")
    for key, value in fast.items():
        if key in ("seeds", "steps") and not is_positive_int(value):
            raise ExpectationError(f"{where}: [fast] key '{key}': {value!r} must be a "
                                   "positive integer")
    fast_expect = fast.get("expect", {})
    if not isinstance(fast_expect, dict):
        raise ExpectationError(f"{where}: key 'fast.expect': {fast_expect!r} must be a table")
    _validate_tables(fast_expect, "fast.expect", variants, where)


def _validate_tables(tables: Mapping[str, Any], prefix: str, variants: Collection[str],
                     where: str) -> None:
    for variant, table in tables.items():
        if variant not in variants:
            raise ExpectationError(f"{where}: [{prefix}.{variant}]: no variant '{variant}'"
                                   f"{did_you_mean(variant, variants)}")
        if not isinstance(table, dict):
            raise ExpectationError(f"{where}: key '{prefix}.{variant}': {table!r} must be a "
                                   "table")
        for key, value in table.items():
            if key not in KEYS:
                raise ExpectationError(f"{where}: [{prefix}.{variant}] unknown key '{key}' "
                                       f"(value {value!r}){did_you_mean(key, KEYS)}")
            if KEYS[key][0] == "variant":
                ok = isinstance(value, str) and value in variants and value != variant
                want = "another variant's name"
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                want = "a number"
            if not ok:
                raise ExpectationError(f"{where}: [{prefix}.{variant}] key '{key}': {value!r} "
                                       f"must be {want}")


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str


def check(exp: Expectation, study_dir: Path) -> Outcome:
    """Score the trained variants in study_dir and compare with the expectation."""
    data = load_results(study_dir)
    scores = study_scores(data)
    env = env_facts.known(data.env_ids.get(exp.variant) or data.env_id)
    mine = scores[scores["variant"] == exp.variant]
    final = mine["final"].to_numpy(dtype=float)
    # variants on different environments are compared on returns normalised per environment
    compared = "final_norm" if data.mixed_env else "final"
    steps = data.run["variants"][exp.variant]["config"]["total_steps"] if data.run else "?"
    context = (f"{len(final)} seeds x {steps} steps, env {data.env_id}; "
               f"CSVs kept in {study_dir}")
    if exp.key == "min_final_iqm":
        value = iqm(final)
        lo, hi = bootstrap_ci(final, "iqm")
        passed = value >= exp.value
        what = f"final IQM {value:.1f} (95% CI [{lo:.1f}, {hi:.1f}]), expected >= {exp.value}"
    elif exp.key == "min_solved_fraction":
        value = (float((final >= env.threshold).mean()) if env and env.solvable and len(final)
                 else math.nan)
        passed = value >= exp.value
        what = (f"solved fraction {value:.2f} (final score >= {env.threshold if env else '?'}),"
                f" expected >= {exp.value}")
    elif exp.key == "max_median_steps_to_threshold":
        value = median_steps_to_threshold(mine["steps_to_threshold"], mine["reached"])
        passed = bool(value <= exp.value)  # NaN (not reached by the median seed) fails
        shown = "not reached" if math.isnan(value) else f"{value:.0f}"
        what = f"median steps to threshold {shown}, expected <= {exp.value}"
    else:
        column = "auc" if exp.key.startswith("auc_") else compared
        other = scores[scores["variant"] == exp.value][column].to_numpy(dtype=float)
        own = mine[column].to_numpy(dtype=float)
        p = prob_improvement(own, other)
        lo, hi = prob_improvement_ci(own, other)
        worse = exp.key.endswith("worse_than")
        passed = hi < 0.5 if worse else lo > 0.5
        bound = "upper CI end < 0.5" if worse else "lower CI end > 0.5"
        what = (f"P({exp.variant} > {exp.value}) on {column} = {p:.2f} (95% CI [{lo:.2f}, "
                f"{hi:.2f}]), expected {bound}; {column} IQM {iqm(own):.3g} vs "
                f"{iqm(other):.3g}")
    return Outcome(bool(passed), f"{exp.study}/{exp.variant} [{exp.tier} tier]: {what}; "
                                 f"{context}")
