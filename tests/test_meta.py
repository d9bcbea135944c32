"""dqn.stats.meta and results/atlas/pooled.csv: BH, one-sided p-values, partial conjunction and
the pooled average against hand computations; their sizes under the null; the committed
pooled.csv against a recomputation from the columns' CSVs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dqn.atlas import pooled as atlas_pooled
from dqn.atlas import spec as atlas_spec
from dqn.atlas import table as atlas_table
from dqn.base.paths import ROOT
from dqn.stats import meta


def test_bh_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04, 0.2 -> k p / j = 0.04, 0.06, 0.0533, 0.2 -> running min from top
    q = meta.bh_adjust([0.01, 0.04, 0.03, 0.2, math.nan])
    np.testing.assert_allclose(q[:4], [0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert math.isnan(q[4])


def test_one_sided_halves_toward_the_estimate() -> None:
    np.testing.assert_allclose(meta.one_sided([0.1, 0.1], [0.3, 0.7], "worse"), [0.05, 0.95])
    np.testing.assert_allclose(meta.one_sided([0.1, 0.1], [0.3, 0.7], "better"), [0.95, 0.05])
    with pytest.raises(ValueError, match="direction"):
        meta.one_sided([0.1], [0.3], "down")


def test_partial_conjunction_by_hand() -> None:
    p = [0.5, 0.001, 0.02, 0.01]  # sorted: 0.001, 0.01, 0.02, 0.5
    assert meta.partial_conjunction_p(p, 1) == pytest.approx(0.004)  # Simes: 4 x 0.001
    assert meta.partial_conjunction_p(p, 2) == pytest.approx(0.03)  # min(3 x .01, 1.5 x .02, .5)
    assert meta.partial_conjunction_p(p, 3) == pytest.approx(0.04)  # min(2 x .02, .5)
    assert meta.partial_conjunction_p(p, 4) == pytest.approx(0.5)
    assert meta.at_least(p, 0.035) == 2
    assert meta.at_least(p, 0.001) == 0
    with pytest.raises(ValueError, match="u must be"):
        meta.partial_conjunction_p(p, 5)


@pytest.mark.parametrize("u", [1, 3, 6])
def test_partial_conjunction_size_with_u_minus_one_false_nulls(u: int) -> None:
    """At the boundary of "at least u" (only u - 1 of 12 nulls false, those with p near 0),
    the test rejects at most alpha of the time (2,000 draws: 5% +- 1.5% Monte-Carlo)."""
    rng = np.random.default_rng(0)
    alpha, n, reps = 0.05, 12, 2000
    p = rng.uniform(size=(reps, n))
    p[:, : u - 1] = 1e-12
    rate = np.mean([meta.partial_conjunction_p(row, u) <= alpha for row in p])
    assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)


def test_pooled_by_hand() -> None:
    fit = meta.pooled([0.2, 0.4, 0.6], [0.1, 0.1, 0.1])
    half = stats.t.ppf(0.975, 2) * math.sqrt(0.04 / 3)  # var(y) = 0.04
    assert fit["cells"] == 3 and fit["mean"] == pytest.approx(0.4)
    assert (fit["lo"], fit["hi"]) == pytest.approx((0.4 - half, 0.4 + half))
    assert fit["tau2"] == pytest.approx(0.03)  # 0.04 - mean(se^2) = 0.04 - 0.01
    assert fit["i2"] == pytest.approx(0.75)
    same = meta.pooled([0.5, 0.5], [0.1, 0.2])  # no spread: tau^2 = 0, I^2 = 0
    assert (same["tau2"], same["i2"]) == (0.0, 0.0)
    one = meta.pooled([0.3], [0.1])
    assert one["mean"] == 0.3 and math.isnan(one["lo"])


def test_pooled_ci_covers_under_heterogeneity() -> None:
    """Cells whose true P differ (sd 0.1 around 0.4), each estimated with error sd 0.05: the
    95% CI of the average covers 0.4 in about 95% of 2,000 maps of 12 cells."""
    rng = np.random.default_rng(1)
    reps, k = 2000, 12
    truth = 0.4 + 0.1 * rng.standard_normal((reps, k))
    est = truth + 0.05 * rng.standard_normal((reps, k))
    hits = [(f := meta.pooled(e, np.full(k, 0.05)))["lo"] <= 0.4 <= f["hi"] for e in est]
    assert abs(np.mean(hits) - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / reps)


def _cell(recipe: str, ablation: str, word: str, p_imp: float, p: float) -> dict:
    return {"recipe": recipe, "env_id": "CartPole-v1", "ablation": ablation, "label": ablation,
            "status": "done", **{f"{m}{c}": v for m in ("", "auc_") for c, v in (
                ("verdict", word), ("verdict_bh", word), ("p_improvement", p_imp),
                ("verdict_p", p))}}


def test_pool_counts_claims_over_cells() -> None:
    table = pd.DataFrame([_cell("a", "x", "worse", 0.1, 1e-6), _cell("b", "x", "worse", 0.2,
                                                                     1e-5),
                          _cell("c", "x", "inconclusive", 0.6, 0.5),
                          _cell("a", "y", "inconclusive", 0.5, 1.0)])
    errors = table[["recipe", "env_id", "ablation"]].assign(
        p=table["p_improvement"], se=0.05, auc_p=table["p_improvement"], auc_se=0.05)
    out = atlas_pooled.pool(table, errors).set_index(["ablation", "metric"])
    x = out.loc[("x", "final score")]
    assert x["claim_level"] == pytest.approx(0.05 / 8)  # 2 ablations x 2 metrics x 2 ways
    assert (x["cells"], x["worse_cells"], x["bh_worse_cells"], x["better_cells"]) == (3, 2, 2, 0)
    # one-sided p for worse: 5e-7, 5e-6, 0.75; u = 2: min(2 x 5e-6, 0.75) = 1e-5 <= 0.05/8
    assert (x["at_least_worse"], x["at_least_better"]) == (2, 0)
    assert x["pooled_p"] == pytest.approx(0.3)
    assert out.loc[("y", "AUC"), "cells"] == 1


def test_bh_verdicts_in_the_atlas_table() -> None:
    rows = [{**{c: math.nan for c in atlas_table.COLUMNS}, "status": "done", "seeds": 20,
             "baseline_seeds": 20, **{f"{m}{c}": v for m in ("", "auc_") for c, v in (
                 ("p_improvement", pi), ("verdict_p", p), ("equivalence_p", 1.0))}}
            for pi, p in ((0.1, 0.001), (0.9, 0.02), (0.45, 0.6))]
    table = pd.DataFrame(rows).astype({"verdict_atlas": object, "auc_verdict_atlas": object,
                                       "verdict_bh": object, "auc_verdict_bh": object})
    atlas_table._atlas_verdicts(table)
    # six difference p-values: .001, .02, .6 twice -> BH q = .003, .03, .6
    np.testing.assert_allclose(table["verdict_bh_q"], [0.003, 0.03, 0.6])
    assert table["verdict_bh"].tolist() == ["worse", "better", "inconclusive"]


def test_the_committed_pooled_csv_matches_the_columns() -> None:
    out = ROOT / "results" / "atlas"
    if not (out / atlas_pooled.POOLED_CSV).is_file():
        pytest.skip("no committed pooled.csv")
    table = atlas_table.read(out / atlas_table.ATLAS_CSV)
    errors = atlas_pooled.cell_errors(atlas_spec.load(), out, table)
    merged = table.merge(errors, on=["recipe", "env_id", "ablation"])
    np.testing.assert_allclose(merged["p"], merged["p_improvement"], atol=1e-6)
    fresh = atlas_pooled.pool(table, errors)
    committed = atlas_pooled.read(out / atlas_pooled.POOLED_CSV)
    pd.testing.assert_frame_equal(fresh, committed, check_dtype=False, rtol=1e-5)
