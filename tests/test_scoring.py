"""dqn.analysis.scoring and dqn.analysis.results: per-seed scores, per-variant summaries and the
reading of a study's results, against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from analysis_fixtures import make_study
from numpy.testing import assert_allclose
from scipy import stats as sps

from dqn.analysis import scoring
from dqn.analysis.results import load as load_results
from dqn.base import env_facts
from dqn.stats import decisions
from dqn.stats.decisions import shaffer
from dqn.stats.estimators import prob_improvement


def evals_frame(curves: dict[tuple[str, int], list[float]], steps: list[int]) -> pd.DataFrame:
    rows = [(v, s, st, r, False) for (v, s), rets in curves.items()
            for st, r in zip(steps, rets, strict=True)]
    return pd.DataFrame(rows, columns=["variant", "seed", "env_step", "return", "diverged"])


# --- per-seed scores --------------------------------------------------------------------------

STEPS = [1000, 2000, 3000, 4000, 5000]


def scores_of(returns: list[float], env_id: str = "CartPole-v1") -> pd.Series:
    return scoring.run_scores(evals_frame({("a", 0): returns}, STEPS), env_id).iloc[0]


def test_final_score_is_mean_of_last_window(monkeypatch):
    assert scoring.FINAL_WINDOW == 3
    s = scores_of([100, 200, 300, 400, 500])
    assert_allclose([s["final"], s["final_norm"]], [400, 0.8])
    monkeypatch.setattr(scoring, "FINAL_WINDOW", 2)
    assert_allclose(scores_of([100, 200, 300, 400, 500])["final"], 450)
    monkeypatch.setattr(scoring, "FINAL_WINDOW", 3)
    assert_allclose(scores_of([-500, -400, -100, -100, -100], "Acrobot-v1")["final_norm"], 0.8)


def test_steps_to_threshold_and_collapse():
    s = scores_of([100, 480, 490, 200, 300])
    assert (s["steps_to_threshold"], s["reached"], s["collapsed"]) == (2000, True, True)
    s = scores_of([100, 480, 490, 240, 300])  # 240 >= 475 / 2: a dip, not a collapse
    assert (s["reached"], s["collapsed"]) == (True, False)
    s = scores_of([10, 100, 200, 470, 474])  # never reaches 475: censored
    assert math.isnan(s["steps_to_threshold"]) and not s["reached"] and not s["collapsed"]
    s = scores_of([10, 100, 480, 500, 500])  # low before reaching is not a collapse
    assert (s["steps_to_threshold"], s["collapsed"]) == (3000, False)


def test_collapse_on_negative_returns_uses_normalised_half():
    # Acrobot: threshold -100 is 0.8 normalised; half of it, 0.4, is a return of -300.
    assert not scores_of([-500, -90, -290, -90, -90], "Acrobot-v1")["collapsed"]
    assert scores_of([-500, -90, -310, -90, -90], "Acrobot-v1")["collapsed"]


def test_auc_is_normalised_trapezoid():
    ev = evals_frame({("a", 0): [0, 250, 500]}, [0, 100, 200])
    assert_allclose(scoring.run_scores(ev, "CartPole-v1")["auc"], [0.5])
    ev = evals_frame({("a", 0): [0, 500, 500]}, [0, 100, 400])  # (50 + 300) / 400
    assert_allclose(scoring.run_scores(ev, "CartPole-v1")["auc"], [0.875])


def test_unknown_env_has_raw_final_but_no_normalised_scores():
    s = scores_of([100, 200, 300, 400, 500], env_id="Pong-v5")
    assert s["final"] == 400 and math.isnan(s["final_norm"]) and not s["reached"]


# --- summary ----------------------------------------------------------------------------------

def test_summarize_scores_matches_direct_formulas():
    finals = {"base": [400, 480, 500, 450, 490, 470, 460, 420],
              "good": [500, 500, 495, 499, 500, 498, 497, 496],
              "bad": [100, 480, 120, 90, 300, 200, 150, 250]}
    ev = evals_frame({(v, s): [r] * 3 for v, rs in finals.items() for s, r in enumerate(rs)},
                     [1000, 2000, 3000])
    scores = scoring.run_scores(ev, "CartPole-v1")
    out = scoring.summarize_scores(scores, ["base", "good", "bad"], "base", "CartPole-v1",
                                   n_resamples=500).set_index("variant")
    assert list(out.reset_index().columns) == scoring.SUMMARY_COLUMNS
    base = np.array(finals["base"], float)
    for v, x in finals.items():
        x = np.array(x, float)
        assert_allclose(out.loc[v, "final_iqm"], sps.trim_mean(x, 0.25))
        assert_allclose(out.loc[v, "final_mean"], x.mean())
        assert_allclose(out.loc[v, "solved_fraction"], np.mean(x >= 475))
        assert out.loc[v, "final_iqm_lo"] <= out.loc[v, "final_iqm"] <= out.loc[v, "final_iqm_hi"]
        if v != "base":
            assert_allclose(out.loc[v, "effect"],
                            sps.trim_mean(x, 0.25) - sps.trim_mean(base, 0.25))
            assert_allclose(out.loc[v, "verdict_p"], decisions.difference_p(x, base))
            # CartPole's final scores: equivalence on P and on cap rates (the seeds at 500)
            assert_allclose(out.loc[v, "equivalence_p"],
                            max(decisions.cap_rate_equivalence_p(x, base, 500.0),
                                decisions.equivalence_p(x, base)))
            assert out.loc[v, "equivalence_on"] == "cap rate"
            auc_x = scores.loc[scores["variant"] == v, "auc"].to_numpy(float)
            auc_base = scores.loc[scores["variant"] == "base", "auc"].to_numpy(float)
            assert_allclose(out.loc[v, "auc_equivalence_p"],
                            decisions.equivalence_p(auc_x, auc_base))
    # one Shaffer-type family: the AUC's two nulls per variant exclude each other (1 each),
    # the cap-rate ones do not (2 each): 2 x 2 + 2 x 1 = 6
    assert (out["family_size"] == 6).all()
    raw = [out.loc[["good", "bad"], c].to_numpy(float) for c in
           ("verdict_p", "auc_verdict_p", "equivalence_p", "auc_equivalence_p")]
    adj, eq_adj = shaffer(np.concatenate(raw[:2]), np.concatenate(raw[2:]),
                          np.array([False, False, True, True]))
    assert_allclose(out.loc[["good", "bad"], "verdict_p_adj"], adj[:2])
    assert_allclose(out.loc[["good", "bad"], "auc_verdict_p_adj"], adj[2:4])
    assert_allclose(out.loc[["good", "bad"], "equivalence_p_adj"], eq_adj[:2])
    assert_allclose(out.loc["good", "p_improvement"], prob_improvement(finals["good"], base))
    assert out.loc["base", "verdict"] == "baseline" and math.isnan(out.loc["base", "verdict_p"])
    assert out.loc["good", "verdict"] == "better"
    assert out.loc["bad", "verdict"] == "worse"
    # power at the first-step level 0.05 / 6, as Noether's formula gives it
    assert_allclose(out.loc["good", "detectable_effect"],
                    decisions.detectable_effect(8, 8, 0.05 / 6))
    assert out.loc["good", "underpowered"] and not out.loc["base", "underpowered"]


def test_too_few_seeds_and_ceiling_flags():
    """3 vs 3, completely separated: P = 0 but no test at 3 seeds can say worse."""
    ev = evals_frame({**{("base", s): [500] * 3 for s in range(3)},
                      **{("low", s): [100 + s] * 3 for s in range(3)}}, [1, 2, 3])
    out = scoring.summarize_scores(scoring.run_scores(ev, "CartPole-v1"), ["base", "low"],
                                   "base", "CartPole-v1", n_resamples=100).set_index("variant")
    assert out.loc["low", "p_improvement"] == 0.0
    assert (out.loc["low", "verdict"], out.loc["low", "auc_verdict"]) == ("too few seeds",) * 2
    assert out["baseline_at_ceiling"].all()  # every baseline seed at 500


def test_summarize_constant_and_single_seed_variants_do_not_crash():
    ev = evals_frame({("base", 0): [500] * 3, ("base", 1): [500] * 3, ("one", 0): [10] * 3},
                     [1, 2, 3])
    out = scoring.summarize_scores(scoring.run_scores(ev, "CartPole-v1"), ["base", "one", "gone"],
                                   "base", "CartPole-v1", n_resamples=100).set_index("variant")
    assert (out.loc["base", "final_iqm_lo"], out.loc["base", "final_iqm_hi"]) == (500, 500)
    assert out.loc["one", "verdict"] == "too few seeds"  # one seed against two: no test
    assert out.loc["gone", "verdict"] == "no data" and not out.loc["gone", "complete"]


def test_load_lists_what_is_unfinished(tmp_path):
    d = make_study(tmp_path, variants=("baseline", "other"), seeds=3, evals=5)
    assert load_results(d).incomplete == []
    run = json.loads((d / "run.json").read_text())
    run["variants"]["other"]["seeds"] = [0, 1, 2, 3]  # the chunk of seed 3 is not trained yet
    run["variants"]["baseline"]["config"]["total_steps"] = 80_000  # runs that stop early
    (d / "run.json").write_text(json.dumps(run))
    study = load_results(d)
    text = "; ".join(study.incomplete)
    assert "other: seeds [3] not trained yet" in text
    assert "baseline: seeds [0, 1, 2] stop before total_steps=80000" in text
    assert study.incomplete_variants == {"baseline", "other"}
    assert study.variants == ["baseline", "other"] and study.baseline == "baseline"
    out = scoring.summarize(study, n_resamples=100).set_index("variant")
    assert not out["complete"].any() and list(out["seeds"]) == [3, 3]


def test_format_1_results_without_row_records_still_load(tmp_path):
    d = make_study(tmp_path, variants=("baseline", "other"), seeds=3, evals=5, record=False)
    assert "format" not in json.loads((d / "run.json").read_text())
    study = load_results(d)
    assert study.incomplete == [] and study.variants == ["baseline", "other"]


def test_write_summary_is_atomic_and_reproducible(tmp_path):
    d = make_study(tmp_path, seeds=4, evals=6)
    path = scoring.write_summary(d, n_resamples=200)
    first = path.read_bytes()
    assert path == d / "summary.csv" and list(pd.read_csv(path)) == scoring.SUMMARY_COLUMNS
    assert scoring.write_summary(d, n_resamples=200).read_bytes() == first
    assert not list(d.glob("*.tmp"))


# --- studies whose variants run on different environments -----------------------------------

MIXED = {"baseline": "CartPole-v1", "v0": "CartPole-v0"}


def test_run_scores_use_each_variants_own_env(monkeypatch):
    ev = evals_frame({("baseline", 0): [100, 475, 500], ("v0", 0): [100, 195, 200],
                      ("other", 0): [1, 2, 3]}, [1000, 2000, 3000])
    monkeypatch.setattr(scoring, "FINAL_WINDOW", 2)
    out = scoring.run_scores(ev, MIXED).set_index("variant")
    assert_allclose(out.loc[["baseline", "v0"], "final"], [487.5, 197.5])
    assert_allclose(out.loc[["baseline", "v0"], "final_norm"], [0.975, 0.9875])
    # normalised (0.2, 0.95, 1) and (0.5, 0.975, 1): mean of the two trapezoid heights
    assert_allclose(out.loc[["baseline", "v0"], "auc"], [(0.575 + 0.975) / 2,
                                                         (0.7375 + 0.9875) / 2])
    assert list(out.loc[["baseline", "v0"], "steps_to_threshold"]) == [2000, 2000]
    # 195 would not reach CartPole-v1's threshold: each variant used its own
    assert scoring.run_scores(ev, "CartPole-v1").set_index("variant").loc["v0", "reached"] == 0
    assert math.isnan(out.loc["other", "final_norm"]) and not out.loc["other", "reached"]


def test_summary_compares_mixed_envs_on_normalised_final():
    # v0 finals 190, 200 (norm 0.95, 1.0); v1 baseline 450, 500 (norm 0.9, 1.0)
    ev = evals_frame({("baseline", 0): [450] * 3, ("baseline", 1): [500] * 3,
                      ("v0", 0): [190] * 3, ("v0", 1): [200] * 3}, [1, 2, 3])
    out = scoring.summarize_scores(scoring.run_scores(ev, MIXED), ["baseline", "v0"], "baseline",
                                   MIXED, n_resamples=200).set_index("variant")
    assert list(out["compared_on"]) == ["final_norm", "final_norm"]
    assert_allclose(out["final_mean"], [475, 195])  # raw units stay raw
    assert_allclose(out["final_norm_iqm"], [0.95, 0.975])
    assert_allclose(out["solved_fraction"], [0.5, 0.5])  # 500 >= 475; 200 >= 195
    # pairs (0.95 | 0.9, 1.0), (1.0 | 0.9, 1.0): 1 + 0 + 1 + 0.5 = 2.5 of 4
    assert_allclose(out.loc["v0", "p_improvement"], 0.625)
    assert_allclose(out.loc["v0", "verdict_p"],
                    decisions.permutation_p([0.95, 1.0], [0.9, 1.0]))
    same = scoring.summarize_scores(scoring.run_scores(ev, "CartPole-v1"), ["baseline", "v0"],
                                    "baseline", {"baseline": "CartPole-v1", "v0": "CartPole-v1"},
                                    n_resamples=200).set_index("variant")
    assert list(same["compared_on"]) == ["final", "final"]
    assert same.loc["v0", "p_improvement"] == 0.0  # raw returns: 190, 200 < 450, 500


def test_mixed_env_study_v0_at_200_beats_v1_at_475_on_normalised_scale(tmp_path):
    d = make_study(tmp_path, name="env_version", variants=("baseline", "v0"), env_id=MIXED,
                   flat={"baseline": 475, "v0": 200}, seeds=8, evals=5)
    study = load_results(d)
    assert study.incomplete == [] and study.mixed_env
    assert study.env_id is None and study.env_ids == MIXED
    assert (study.env_of("baseline"), study.env_of("v0")) == ("CartPole-v1", "CartPole-v0")
    scores = scoring.study_scores(study).groupby("variant")
    assert scores["final"].unique().to_dict() == {"baseline": [475.0], "v0": [200.0]}
    assert scores["final_norm"].unique().to_dict() == {"baseline": [0.95], "v0": [1.0]}
    assert scores["steps_to_threshold"].unique().to_dict() == {"baseline": [10_000.0],
                                                               "v0": [10_000.0]}
    assert not scoring.study_scores(study)["collapsed"].any()
    out = scoring.summarize(d, n_resamples=200).set_index("variant")
    assert list(out["solved_fraction"]) == [1.0, 1.0]
    assert list(out["final_iqm"]) == [475.0, 200.0]
    assert list(out["final_norm_iqm"]) == [0.95, 1.0]
    assert list(out["compared_on"]) == ["final_norm", "final_norm"]
    r = out.loc["v0"]
    # complete separation: the interval is [0.025^(1/8), 1] (8 seeds a side)
    assert (r["p_improvement"], r["p_improvement_hi"]) == (1.0, 1.0)
    assert_allclose(r["p_improvement_lo"], 0.025 ** (1 / 8))
    assert r["verdict"] == "better" and out["complete"].all()
    # on raw returns 200 < 475 every time: the opposite, meaningless, answer
    assert prob_improvement([200.0] * 8, [475.0] * 8) == 0.0


def test_single_env_study_keeps_env_id_and_compares_raw_finals(tmp_path):
    d = make_study(tmp_path, variants=("baseline", "other"), seeds=3, evals=5)
    study = load_results(d)
    assert study.env_id == "CartPole-v1" and not study.mixed_env and study.envs == "CartPole-v1"
    assert study.env_ids == {"baseline": "CartPole-v1", "other": "CartPole-v1"}
    assert env_facts.known(study.env_id).threshold == 475  # as dqn.analysis.expectations uses it
    out = scoring.summarize(d, n_resamples=100)
    assert list(out["compared_on"]) == ["final", "final"]
    scores = scoring.study_scores(study)
    x, y = (scores.loc[scores["variant"] == v, "final"] for v in ("other", "baseline"))
    assert_allclose(out.loc[1, "p_improvement"], prob_improvement(x, y))
