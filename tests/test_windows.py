"""The final-window sensitivity table (dqn.analysis.windows, dqn.report.sensitivity) on hand-made
curves whose verdict flips with the window, the declared window read from run.json, and the
study-file key that declares it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import make_study

from dqn.analysis import scoring, windows
from dqn.analysis.results import StudyResults, load
from dqn.report import sensitivity
from dqn.run.studyfile import StudyError
from dqn.run.studyfile import load as load_study
from dqn.stats.sequential import Design

SEEDS, EVALS = 6, 12


def _study(final_window: int | None = None, design: Design | None = None) -> StudyResults:
    """Baseline: every evaluation 300. Variant: 300, then 0 at evaluations 9-11 and 500 at the
    last (12), plus a per-seed offset of 0.1 so seeds do not tie. Final scores (per seed):
    window 1: 500 > 300 (better); 3: 166.7 < 300 (worse); 5: 160; 10: 230 (worse)."""
    rows = []
    for v in ("baseline", "v"):
        for s in range(SEEDS):
            ret = np.full(EVALS, 300.0)  # (E,)
            if v == "v":
                ret[8:11], ret[11] = 0.0, 500.0
                ret = ret + 0.1 * s
            rows += [{"variant": v, "seed": s, "env_step": 1000 * (e + 1), "return": r,
                      "diverged": False} for e, r in enumerate(ret)]
    return StudyResults(path=Path("toy"), name="toy", run={}, episodes=None,
                        evals=pd.DataFrame(rows), diagnostics=None,
                        variants=["baseline", "v"], baseline="baseline",
                        env_id="CartPole-v1", question="", final_window=final_window,
                        design=design)


def _final(study: StudyResults, window: int) -> np.ndarray:
    s = scoring.study_scores(study, window)
    return s.loc[s["variant"] == "v", "final"].to_numpy()


def test_final_scores_follow_the_window() -> None:
    study = _study()
    offsets = 0.1 * np.arange(SEEDS)
    np.testing.assert_allclose(_final(study, 1), 500 + offsets)
    np.testing.assert_allclose(_final(study, 3), 500 / 3 + offsets)
    np.testing.assert_allclose(_final(study, 5), (300 + 500) / 5 + offsets)
    np.testing.assert_allclose(_final(study, 10), (6 * 300 + 500) / 10 + offsets)
    # the declared window is the default for study_scores
    np.testing.assert_allclose(_final(_study(final_window=1), None), 500 + offsets)


@pytest.mark.parametrize("declared", [None, 1])
def test_the_table_redecides_each_window(declared) -> None:
    study = _study(final_window=declared)
    summary = scoring.summarize(study, n_resamples=200)
    table = windows.window_table(study, summary).set_index("window")
    assert list(table.index) == [1, 3, 5, 10]
    assert list(table["verdict"]) == ["better", "worse", "worse", "worse"]
    # exact studentized permutation p of complete separation, 6 v 6: 2 / C(12, 6)
    assert table.loc[1, "verdict_p"] == pytest.approx(2 / math.comb(12, 6))
    assert list(table["p_improvement"]) == [1.0, 0.0, 0.0, 0.0]
    own = 1 if declared == 1 else 3
    assert table["declared"].to_dict() == {w: w == own for w in (1, 3, 5, 10)}
    assert table.loc[own, "verdict"] == summary.set_index("variant").loc["v", "verdict"]
    assert table["changed"].to_dict() == {
        w: table.loc[w, "verdict"] != table.loc[own, "verdict"] for w in (1, 3, 5, 10)}


def test_the_declared_window_recomputed_matches_the_summary() -> None:
    study = _study()
    summary = scoring.summarize(study, n_resamples=200)
    again = windows.window_verdicts(study, summary, 3).iloc[0]
    row = summary.set_index("variant").loc["v"]
    for column in ("p_improvement", "verdict_p", "verdict_p_adj", "verdict"):
        assert again[column] == row[column], column


def test_adaptive_studies_redecide_with_their_design() -> None:
    study = _study(design=Design(stage=3, max_seeds=6))
    summary = scoring.summarize(study, n_resamples=200)
    table = windows.window_table(study, summary).set_index("window")
    # 3 v 3 separated: exact p = 2 / C(6, 3) = 0.1, above every stage level; 6 v 6 decides
    assert list(table["verdict"]) == ["better", "worse", "worse", "worse"]
    assert table.loc[3, "verdict"] == summary.set_index("variant").loc["v", "verdict"]


def test_counts_per_kind_and_window() -> None:
    table = pd.DataFrame({
        "source": ["a"] * 4 + ["b"] * 4, "kind": ["study"] * 8, "variant": ["v"] * 8,
        "window": [1, 3, 5, 10] * 2, "declared": [False, True, False, False] * 2,
        "verdict": ["better", "better", "inconclusive", "worse",
                    "inconclusive", "inconclusive", "inconclusive", "better"],
        "changed": [False, False, True, True, False, False, False, True]})
    c = sensitivity.counts(table).set_index("window")
    assert c.loc[5, ["comparisons", "changed", "lost", "gained"]].tolist() == [2, 1, 1, 0]
    assert c.loc[10, ["comparisons", "changed", "lost", "gained"]].tolist() == [2, 2, 0, 1]
    assert c.loc[1, "changed"] == 0
    assert "| studys |" not in "\n".join(sensitivity.section(table))


def _write_study(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "toy.toml"
    path.write_text(f'question = "q"\n{extra}\n[variants.baseline]\n')
    return path


def test_the_study_file_declares_its_window(tmp_path: Path) -> None:
    assert load_study(_write_study(tmp_path, "final_window = 5")).final_window == 5
    assert load_study(_write_study(tmp_path, "")).final_window is None
    for bad in ("0", "2.5", "true", '"3"'):
        with pytest.raises(StudyError, match="toy.toml: key 'final_window': .* must be a whole"):
            load_study(_write_study(tmp_path, f"final_window = {bad}"))


def test_run_json_carries_the_declared_window(tmp_path: Path) -> None:
    d = make_study(tmp_path, seeds=3)
    assert load(d).final_window is None
    run = json.loads((d / "run.json").read_text())
    (d / "run.json").write_text(json.dumps(run | {"final_window": 1}))
    study = load(d)
    assert study.final_window == 1 and windows.declared_window(study) == 1
    scores = scoring.study_scores(study)
    last = study.evals.sort_values("env_step").groupby(["variant", "seed"])["return"].last()
    np.testing.assert_allclose(scores.set_index(["variant", "seed"])["final"], last)
