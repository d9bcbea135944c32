"""docs/findings.md: generated from the committed CSVs (so no number on it can go stale), and
the generator's counts and words on a hand-sized atlas."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from dqn.atlas import spec as atlas_spec
from dqn.atlas import table as atlas_table
from dqn.base.paths import ROOT
from dqn.cli.main import main
from dqn.report import digest, findings

DOCS = ROOT / "docs" / "findings.md"


def test_the_committed_findings_page_matches_the_committed_csvs(tmp_path: Path) -> None:
    if not (ROOT / "results" / "atlas" / atlas_table.ATLAS_CSV).is_file():
        pytest.skip("no committed atlas")
    fresh = findings.write_findings(ROOT / "results", tmp_path / "findings.md",
                                    atlas_spec.load())
    assert fresh is not None
    assert DOCS.read_text() == fresh.read_text(), (
        "docs/findings.md differs from what the committed CSVs give: run `make report` and "
        "commit docs/findings.md (never edit it by hand)")


def cell(recipe: str, env_id: str, label: str, verdict: str, auc_verdict: str,
         atlas: str | None = None, final_iqm: float = 10.0,
         status: str = "done") -> dict:
    """One atlas.csv row with only what the findings page reads."""
    return {"recipe": recipe, "env_id": env_id, "ablation": label.replace(" ", "_"),
            "label": label, "status": status, "seeds": 20, "baseline_seeds": 20,
            "baseline_final_iqm": 500.0, "final_iqm": final_iqm, "baseline_auc_iqm": 0.7,
            "auc_iqm": 0.1, "verdict": verdict, "auc_verdict": auc_verdict,
            "verdict_atlas": atlas or verdict, "auc_verdict_atlas": auc_verdict,
            "family_size": 8, "atlas_family_size": 16, "detectable_effect": 0.3812,
            "underpowered": True, "baseline_at_ceiling": True}


def test_counts_cells_and_stars_on_a_hand_sized_atlas() -> None:
    table = pd.DataFrame([
        cell("a", "CartPole-v1", "no mask", "worse", "worse", final_iqm=9.27),
        cell("a", "Acrobot-v1", "no mask", "worse", "inconclusive", atlas="inconclusive",
             final_iqm=-480.4),
        cell("b", "CartPole-v1", "no mask", "inconclusive", "better"),
        cell("a", "CartPole-v1", "dueling", "inconclusive", "inconclusive"),
        cell("a", "Acrobot-v1", "dueling", "inconclusive", "inconclusive"),
        cell("b", "CartPole-v1", "dueling", "", "", status="recipe's own setting"),
    ])
    text = findings.render(table)
    assert ("- **no mask** (3 cells). Final score: *worse* in 2 (a CartPole (9.27 against "
            "500)*, a Acrobot (-480 against 500)); *inconclusive* in 1. AUC: *worse* in 1 "
            "(a CartPole*); *better* in 1 (b CartPole*); *inconclusive* in 1.") in text
    assert "**Not decided in any cell**, on either metric: dueling." in text
    assert "(first-step multiplier 8:" in text and "(multiplier 16)" in text
    assert ">= 0.38 with 80% power" in text
    assert "| a | 500 (0.700) | 500 (0.700) |" in text  # baselines: recipe x environment
    assert "3 columns are trained: a CartPole, a Acrobot, b CartPole." in text


def test_nothing_finished_says_so() -> None:
    table = pd.DataFrame([cell("a", "CartPole-v1", "no mask", "", "", status="not run")])
    assert "No column of the atlas is finished yet" in findings.render(table)


def test_a_study_line_names_each_decided_variant_with_its_numbers() -> None:
    summary = pd.DataFrame([
        {"variant": "baseline", "seeds": 20, "final_iqm": 500.0, "design": "fixed",
         "compared_on": "final", "verdict": "baseline", "auc_verdict": "baseline"},
        {"variant": "huber", "seeds": 20, "final_iqm": 9.28, "design": "fixed",
         "compared_on": "final", "verdict": "worse", "p_improvement": 0.0,
         "p_improvement_lo": 0.0, "p_improvement_hi": 0.004, "verdict_p_adj": 0.0004,
         "equivalence_p_adj": 1.0, "auc_verdict": "equivalent", "auc_p_improvement": 0.5,
         "auc_p_improvement_lo": 0.41, "auc_p_improvement_hi": 0.6, "auc_verdict_p_adj": 1.0,
         "auc_equivalence_p_adj": 0.0123},
    ])
    line = digest.study_line("loss", summary, "baseline")
    assert line == (
        "- **[loss](../results/REPORT.md#loss)** (1 variant against `baseline`, 20 seeds a "
        "side, fixed design; baseline final IQM 500). Final score: *worse* in 1 (huber (P = "
        "0.00 [0.00, 0.00], adj. p < 0.001, IQM 9.28 against 500)). AUC: *equivalent* in 1 "
        "(huber (P = 0.50 [0.41, 0.60], adj. p 0.012)).")


def test_report_writes_findings_only_for_the_repositorys_results(tmp_path: Path,
                                                                  capsys) -> None:
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert not (tmp_path / "findings.md").exists()
    assert capsys.readouterr().out.count("wrote") == 1  # REPORT.md only
    out = tmp_path / "page.md"
    assert main(["report", "--out", str(tmp_path), "--findings", str(out)]) == 0
    assert not out.exists()  # no atlas under tmp_path: said, nothing written
    assert "not written: no" in capsys.readouterr().out


def test_the_readme_summary_says_what_the_committed_atlas_says() -> None:
    """README's five-line summary carries no numbers, but its claims are claims: checked here
    against atlas.csv, so a re-run that changes a verdict pattern fails until the README
    follows."""
    csv = ROOT / "results" / "atlas" / atlas_table.ATLAS_CSV
    if not csv.is_file():
        pytest.skip("no committed atlas")
    readme = " ".join((ROOT / "README.md").read_text().split())
    t = atlas_table.read(csv)
    done = t[t["status"] == "done"]
    assert "fifteen ablations under four recipes" in readme
    assert t["ablation"].nunique() == 15 and t["recipe"].nunique() == 4
    assert set(t["env_id"]) == {"CartPole-v1", "Acrobot-v1", "LunarLander-v3"}

    def of(label: str) -> pd.DataFrame:
        return done[done["label"] == label]

    # "No terminal masking and clearing the memory every episode hurt in most cells."
    for label in ("no terminal masking", "memory cleared each episode"):
        cells = of(label)
        assert (cells["verdict"] == "worse").sum() > len(cells) / 2
        assert not (cells[["verdict", "auc_verdict"]] == "better").any().any()
    # "MSE wins on CartPole and Acrobot, Huber on LunarLander" (the MSE recipes swap to
    # Huber; notebook_c, the Huber recipe, swaps to MSE)
    loss = of("Huber/MSE swapped")
    mse = loss[loss["recipe"] != "notebook_c"]
    lunar = mse["env_id"] == "LunarLander-v3"
    assert (mse[~lunar]["verdict"] == "worse").all() and (mse[lunar]["verdict"] == "better").all()
    c = loss[loss["recipe"] == "notebook_c"].set_index("env_id")
    assert c.loc["CartPole-v1", "verdict"] == "better"
    assert c.loc["LunarLander-v3", "auc_verdict"] == "worse"
    # "Removing the target network has no single answer, even under the recipe that asked it."
    target = of("no target network")
    words = set(target[target["recipe"] == "notebook_c"][["verdict", "auc_verdict"]].values.ravel())
    assert {"better", "worse"} <= words
    # "3-step returns learn faster and noisy networks slower in many cells"
    nstep, noisy = of("3-step returns"), of("noisy nets (no epsilon)")
    assert (nstep["auc_verdict"] == "better").sum() >= 3
    assert not (nstep[["verdict", "auc_verdict"]] == "worse").any().any()
    assert (noisy["auc_verdict"] == "worse").sum() >= 3
    assert not (noisy[["verdict", "auc_verdict"]] == "better").any().any()
    # "double DQN, dueling and truncation-as-terminal are inconclusive everywhere"
    for label in ("double DQN toggled", "dueling toggled", "truncation as terminal"):
        assert (of(label)[["verdict", "auc_verdict"]] == "inconclusive").all().all()
    # docs/atlas.md: "At 100,000 steps no recipe is near the solved 200"
    assert "no\nrecipe is near the solved 200" in (ROOT / "docs" / "atlas.md").read_text()
    lunar = done[done["env_id"] == "LunarLander-v3"]
    assert (lunar["baseline_final_iqm"] < 100).all()


def test_error_rates_and_the_pooled_table_by_hand() -> None:
    table = pd.DataFrame([
        {**cell("a", "CartPole-v1", "no mask", "worse", "inconclusive", atlas="inconclusive"),
         "verdict_bh": "worse", "auc_verdict_bh": "better"},
        {**cell("b", "CartPole-v1", "no mask", "inconclusive", "inconclusive"),
         "verdict_bh": "worse", "auc_verdict_bh": "inconclusive"}])
    pooled = pd.DataFrame([
        {"ablation": "no_mask", "label": "no mask", "metric": m, "cells": 2, "pooled_p": 0.2,
         "pooled_p_lo": 0.05, "pooled_p_hi": 0.354, "tau2": 0.01, "i2": 0.5,
         "at_least_worse": w, "at_least_better": 0, "claim_level": 0.01}
        for m, w in (("final score", 2), ("AUC", 0))])
    text = findings.render(table, pooled=pooled)
    assert "| final score | 1 worse, 0 better | 0 worse, 0 better | 2 worse, 0 better |" in text
    assert "| AUC | 0 worse, 0 better | 0 worse, 0 better | 0 worse, 1 better |" in text
    assert ("| no mask | 2 | 0.20 [0.05, 0.35] | 50% | worse in 2 | 0.20 [0.05, 0.35] | 50% "
            "| — |") in text
    assert "each claim at 0.01 (Bonferroni" in text


def test_the_planning_table_by_hand() -> None:
    from scipy import stats

    table = pd.DataFrame([cell("a", "CartPole-v1", "no mask", "worse", "worse")])
    text = findings.render(table)
    # Noether, equal groups: N = z^2 / (12 / 4 * d^2), per group N / 2, rounded up
    z = stats.norm.ppf(1 - 0.05 / 2) + stats.norm.ppf(0.8)
    one = [math.ceil(z ** 2 / (3 * d ** 2) / 2) for d in findings.PLANNED_EFFECTS]
    z8 = stats.norm.ppf(1 - 0.05 / 8 / 2) + stats.norm.ppf(0.8)  # family of 8: first level
    eight = [math.ceil(z8 ** 2 / (3 * d ** 2) / 2) for d in findings.PLANNED_EFFECTS]
    assert f"| 0.1 | {one[1]:,} | {eight[1]:,} |" in text
    assert one[1] == 131  # (1.96 + 0.84)^2 / (3 x 0.01) / 2 = 130.8 for P = 0.6
    assert "a column detects 0.38 or larger" in text
