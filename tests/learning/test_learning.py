"""One test per learning expectation declared in studies/*.toml.

Fast-tier expectations (`[fast.expect.*]`) carry the `learning` marker and run in `make test`;
full-tier ones (`[expect.*]`) also carry `regress` and run in `make regress` at the study's
full seed count. Every test trains with the current code in a temporary directory (never the
committed results), then scores with dqn.analysis.scoring; a failure names the value, its CI, the
threshold, the seeds, the steps and where the CSVs were kept. A training of the same config,
seeds and steps as the committed results (the baseline's fast tier, every full tier) must also
reproduce their rows bit for bit (dqn.store.reproduce): a failure names the first differing row.

The fast tier (CI) holds two claims, each calibrated on disjoint seed sets with
scripts/calibrate_fast_tier.py (details beside them in the study files):
- baseline solves CartPole-v1 on most seeds (20 seeds x 50k steps: final IQM >= 475 and at
  least 70% of the seeds solved). 0 of 5 independent seed sets failed (IQM 500 in all, solved
  0.80-1.00); a binomial false-failure rate of 0.7% per run at the measured 88% solve rate.
- memory clearing is worse than the baseline (5 seeds x 10k steps). 0 of 8 independent seed
  sets failed, each with P(clear_memory > baseline) = 0.00 [0.00, 0.00]: far below 1%.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from dqn.analysis import regression
from dqn.analysis.expectations import Expectation, check
from dqn.base.paths import RESULTS_DIR
from dqn.run import runner, studyfile
from dqn.store.reproduce import compare

ALL = [e for path in studyfile.available().values() for e in studyfile.load(path).expectations()]


def _param(e: Expectation):
    marks = [pytest.mark.learning] + ([pytest.mark.regress] if e.tier == "full" else [])
    return pytest.param(e, id=e.id, marks=marks)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Train (once per study and tier) the variants an expectation needs; return the dir."""
    roots: dict[tuple[str, str], Path] = {}

    def train_for(exp: Expectation) -> Path:
        key = (exp.study, exp.tier)
        if key not in roots:
            roots[key] = tmp_path_factory.mktemp(f"{exp.study}-{exp.tier}")
        runner.run(studyfile.find(exp.study), out_dir=roots[key], seeds=exp.seeds,
                   steps=exp.steps, variants=exp.variants(), figures=False, progress=False)
        return roots[key] / exp.study

    return train_for


@pytest.mark.parametrize("exp", [_param(e) for e in ALL])
def test_expectation(exp: Expectation, trained) -> None:
    folder = trained(exp)
    outcome = check(exp, folder)
    # exact reproduction: a run of committed results' config, seeds and steps must give their
    # rows bit for bit (any change to learning fails here, even one the threshold misses)
    committed = RESULTS_DIR / exp.study
    changed = compare(folder, committed).failures
    table = ""
    if exp.tier == "full" and (committed / "run.json").is_file():
        # make regress (-rP) prints, for each full tier, the paired comparison with the
        # committed results: what a deliberate change of numbers must show (docs/testing.md)
        with contextlib.suppress(regression.NothingToCompare):
            table = regression.format_table(regression.compare_folders(committed, folder))
            print(f"{exp.study} against {committed}:\n{table}")
    assert not changed, "\n".join(changed) + (f"\n{table}" if table else "")
    assert outcome.passed, outcome.message
