"""`python -m dqn export`: per-seed score matrices in rliable's layout, equal to the summary's."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_fixtures import make_study
from scipy import stats as sps

from dqn.analysis import scoring
from dqn.cli import main as cli
from dqn.report.export import FILENAME, export


def test_export_layout_and_values(tmp_path):
    d = make_study(tmp_path, variants=("baseline", "other"), seeds=4, evals=6)
    path = export(d)
    assert path == d / FILENAME
    data = np.load(path)
    scores = scoring.study_scores(scoring.load_results(d))
    for v in ("baseline", "other"):
        mine = scores[scores["variant"] == v].sort_values("seed")
        assert data[f"final/{v}"].shape == (4, 1)  # (runs, tasks)
        assert data[f"curves/{v}"].shape == (4, 1, 6)  # (runs, tasks, evaluations)
        assert data[f"steps/{v}"].tolist() == [(i + 1) * (50_000 // 6) for i in range(6)]
        assert data[f"seeds/{v}"].tolist() == [0, 1, 2, 3]
        np.testing.assert_array_equal(data[f"final/{v}"][:, 0], mine["final"])
        np.testing.assert_array_equal(data[f"auc/{v}"][:, 0], mine["auc"])
        # the final score is the mean of the last FINAL_WINDOW points of each curve
        np.testing.assert_allclose(data[f"curves/{v}"][:, 0, -scoring.FINAL_WINDOW:].mean(-1),
                                   mine["final"])
        np.testing.assert_allclose(data[f"curves_norm/{v}"],
                                   data[f"curves/{v}"] / 500.0)  # CartPole-v1: 0 to 500
    # what rliable's aggregate IQM does with a (runs, tasks) matrix: trim 25% of all scores
    summary = scoring.summarize(d, n_resamples=100).set_index("variant")
    assert sps.trim_mean(data["final/other"].ravel(), 0.25) == pytest.approx(
        summary.loc["other", "final_iqm"])


def test_export_command(tmp_path, capsys):
    make_study(tmp_path, name="toy", variants=("baseline", "other"), seeds=3, evals=4)
    to = tmp_path / "elsewhere" / "toy.npz"
    assert cli.main(["export", "toy", "--out", str(tmp_path), "--to", str(to)]) == 0
    assert to.exists() and str(to) in capsys.readouterr().out
    assert cli.main(["export", "nothing", "--out", str(tmp_path)]) == 2
    assert "no results for study 'nothing'" in capsys.readouterr().err
