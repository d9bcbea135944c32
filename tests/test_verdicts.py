"""Verdicts on committed evidence: the cases the old CI-based verdicts got inconsistent
(issue "Verdicts you can trust") now get one answer from the corrected procedure.

The per-seed final scores are those of the results committed before the change (git history:
results/{env_version,no_target,double_dqn,replay} at 03f4a70); they are inputs here.
"""

from __future__ import annotations

import pandas as pd
import pytest

from dqn.analysis import scoring

BASELINE = [500.0] * 15 + [471.4] + [500.0] * 4
OLD = {
    # P = 0.396 in all three; v0 was "worse", the other two "no clear difference"
    "env_version": {"v0": [1.0] * 4 + [171.9333 / 200, 1.0, 1.0, 197.4667 / 200, 1.0, 1.0,
                           178.4 / 200, 1.0, 1.0, 1.0, 122.0 / 200] + [1.0] * 4 + [179.3333 / 200]},
    "no_target": {"no_target": [500.0] * 7 + [284.3333] + [500.0] * 6 + [230.0, 500.0, 312.5333,
                                                                         500.0, 484.0667,
                                                                         413.5333]},
    "double_dqn": {"double_dqn": [500.0, 349.2667] + [500.0] * 2 + [493.1333] + [500.0] * 9
                   + [445.4667, 500.0, 500.0, 220.8, 425.2, 500.0]},
    # capacity_10k was "worse" (P 0.375 [0.27, 0.48]) while Holm-corrected Welch gave 0.135
    "replay": {
        "capacity_1k": [500.0] * 5 + [361.9333, 500.0, 435.0667, 493.2, 500.0, 500.0, 500.0,
                                     269.1333, 500.0, 500.0, 317.1333, 349.4, 500.0, 500.0,
                                     473.2],
        "capacity_10k": [447.8667, 500.0, 469.8] + [500.0] * 8 + [499.4667, 483.2, 500.0, 500.0,
                                                                   348.4, 500.0, 472.8, 500.0,
                                                                   500.0],
        "capacity_100k": [452.6667, 498.4667, 500.0, 500.0, 488.8, 443.0667, 447.6, 494.6,
                          497.0667, 500.0, 485.1333, 412.2667, 500.0, 500.0, 490.6, 459.6667,
                          500.0, 500.0, 487.9333, 440.5333],
        "store_0.25": [137.5333, 500.0, 370.7333, 285.8667, 408.4667, 294.8667, 500.0, 500.0,
                       471.2667, 443.0, 500.0, 498.4, 299.4667, 286.8667, 500.0, 132.2,
                       493.3333, 297.5333, 274.3333, 500.0]},
}


def summary(variants: dict[str, list[float]], base: list[float] = BASELINE,
            envs: dict[str, str] | None = None) -> pd.DataFrame:
    """A study's summary from per-seed final scores (AUC set equal to them: only the final
    score's verdict is under test); `envs` maps a variant to its environment (default all
    CartPole-v1)."""
    envs = envs or {}
    cap = {"CartPole-v1": 500.0, "CartPole-v0": 200.0}
    rows = [{"variant": v, "seed": s, "final": x, "final_norm": x / cap[envs.get(v, "CartPole-v1")],
             "auc": x / cap[envs.get(v, "CartPole-v1")],
             "steps_to_threshold": float("nan"), "reached": False, "collapsed": False,
             "diverged": False, "evals": 20, "last_step": 50_000}
            for v, xs in {"baseline": base, **variants}.items() for s, x in enumerate(xs)]
    env_ids = {v: envs.get(v, "CartPole-v1") for v in ["baseline", *variants]}
    return scoring.summarize_scores(pd.DataFrame(rows), ["baseline", *variants], "baseline",
                                    env_ids if envs else "CartPole-v1",
                                    n_resamples=2_000).set_index("variant")


def test_identical_evidence_identical_verdicts() -> None:
    """v0, no_target and double_dqn: the same P(improvement) over the same baseline once got
    opposite labels at the edge of a Monte-Carlo CI. Each study now says the same thing."""
    v0 = {"v0": [200 * x for x in OLD["env_version"]["v0"]]}  # back to v0's returns
    got = {name: summary(v0, envs={"v0": "CartPole-v0"}) if name == "env_version" else
           summary(variants) for name, variants in OLD.items() if name != "replay"}
    p = {name: float(s["p_improvement"].iloc[1]) for name, s in got.items()}
    assert p == pytest.approx(dict.fromkeys(p, 0.39625))
    assert {name: s["verdict"].iloc[1] for name, s in got.items()} == dict.fromkeys(
        p, "inconclusive")


def test_replay_10k_is_no_longer_worse() -> None:
    """Corrected over the study's family, capacity 10k's P = 0.375 is no evidence of harm."""
    s = summary(OLD["replay"])
    assert s.loc["capacity_10k", "p_improvement"] == pytest.approx(0.375)
    assert s.loc["capacity_10k", "verdict_p_adj"] > 0.05
    assert s.loc["capacity_10k", "verdict"] == "inconclusive"
    assert s.loc["store_0.25", "verdict"] == "worse"  # the clear case stays clear


def test_three_seeds_are_too_few() -> None:
    """The 3-seed study (lr 1e-3 vs 3e-4): complete separation, once "worse" with P = 0.00
    [0.00, 0.00]; 3 vs 3 cannot reach p < 0.05, so the verdict says so."""
    s = summary({"lr_3e-4": [120.0, 95.0, 140.0]}, base=[480.0, 500.0, 430.0])
    assert s.loc["lr_3e-4", "p_improvement"] == 0.0
    assert s.loc["lr_3e-4", "verdict_p"] == pytest.approx(0.1)  # 2 of C(6, 3) = 20
    assert s.loc["lr_3e-4", "verdict"] == "too few seeds"
