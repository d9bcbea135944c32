"""dqn.stats.paired by hand, dqn.analysis.regression and `python -m dqn compare` on synthetic
study folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from analysis_fixtures import make_study
from scipy import stats

from dqn.analysis.regression import NothingToCompare, compare_folders
from dqn.cli.main import main
from dqn.stats.paired import lower_bound, noninferiority_p, power_at_no_change


def test_noninferiority_p_counts_sign_patterns_by_hand() -> None:
    # d + 0.05 = (0.15, -0.15, 0.35), sum 0.35; of the 8 sign patterns, (+,+,+) 0.35,
    # (+,-,+) 0.65 and (-,-,+) 0.35 reach it: p = 3/8
    assert noninferiority_p([0.1, -0.2, 0.3], 0.05) == pytest.approx(3 / 8)
    assert noninferiority_p(np.zeros(10), 0.05) == pytest.approx(2.0 ** -10)  # only all +
    assert noninferiority_p([-1.0, -1.0, -1.0], 0.05) == 1.0
    assert np.isnan(noninferiority_p([0.1], 0.05))


def test_noninferiority_p_is_valid_at_the_margin() -> None:
    rng = np.random.default_rng(3)
    p = np.array([noninferiority_p(rng.normal(-0.05, 0.1, 8), 0.05) for _ in range(400)])
    rate = (p <= 0.05).mean()  # exact test: at most 5%, up to Monte-Carlo error 3 SE
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400)


def test_lower_bound_and_power_match_the_formulas() -> None:
    d = np.array([0.1, -0.2, 0.3, 0.0])
    want = d.mean() - stats.t.ppf(0.95, 3) * d.std(ddof=1) / 2
    assert lower_bound(d) == pytest.approx(want)
    assert lower_bound([0.2, 0.2]) == 0.2
    want = stats.norm.cdf(0.05 * 2 / d.std(ddof=1) - stats.norm.ppf(0.95))
    assert power_at_no_change(d, 0.05, 0.05) == pytest.approx(want)
    assert power_at_no_change(np.zeros(5), 0.05, 0.05) == 1.0


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    old = make_study(tmp_path / "old", seeds=12)
    new = tmp_path / "new" / old.name
    shutil.copytree(old, new)
    return old, new


def test_the_same_results_are_identical(tmp_path: Path) -> None:
    old, new = _pair(tmp_path)
    table = compare_folders(old, new)
    assert set(table["verdict"]) == {"identical"}
    assert (table["difference"] == 0).all() and (table["seeds"] == 12).all()
    assert len(table) == 2 * 3  # three variants x (AUC, final)


def test_a_collapsed_variant_is_inconclusive_and_fails_the_command(tmp_path: Path,
                                                                    capsys) -> None:
    old = make_study(tmp_path / "old", seeds=12)
    new = make_study(tmp_path / "new", seeds=12, flat={"soft_target": 9.0})
    table = compare_folders(old, new).set_index(["variant", "metric"])
    soft = table.loc["soft_target"]
    assert (soft["difference"] < -0.3).all() and set(soft["verdict"]) == {"inconclusive"}
    assert main(["compare", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "soft_target" in out and "inconclusive" in out


def test_compare_needs_a_shared_config(tmp_path: Path, capsys) -> None:
    old, new = _pair(tmp_path)
    run = json.loads((new / "run.json").read_text())
    for meta in run["variants"].values():
        meta["config_hash"] = "another"
    (new / "run.json").write_text(json.dumps(run))
    with pytest.raises(NothingToCompare, match="share no variant"):
        compare_folders(old, new)
    assert main(["compare", str(old), str(new)]) == 2
    assert main(["compare", str(old), str(tmp_path / "nowhere")]) == 2
    assert "no run.json" in capsys.readouterr().err
