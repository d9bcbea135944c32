"""dqn.report.markdown: REPORT.md rows, derived verdicts and incomplete studies."""

from __future__ import annotations

import json
import os
import re

import pandas as pd
import pytest
from analysis_fixtures import make_study
from markdown_links import anchors

from dqn.analysis import overview
from dqn.analysis.scoring import summarize
from dqn.figures import plots
from dqn.report import markdown as report
from dqn.store.store import StoreError


def test_report_rows_verdicts_and_figures(tmp_path):
    results = tmp_path / "results"
    d = make_study(results, name="target", seeds=5, evals=8)
    plots.make_figures(d, n_resamples=100)
    make_study(results, name="quick", seeds=2, evals=3)  # smoke runs stay out of the report
    path = report.write_report(results, n_resamples=100)
    text = path.read_text()
    assert path == results / "REPORT.md"
    assert "## target" in text and "## quick" not in text
    assert "Does the target network matter?" in text and "`abc1234`" in text
    summary = summarize(d, n_resamples=100)
    for _, r in summary.iterrows():
        row = next(line for line in text.splitlines()
                   if line.startswith("| ") and r["variant"] in line.split("|")[1])
        cells = [c.strip() for c in row.split("|")]
        assert (cells[-5], cells[-2]) == (f"*{r['verdict']}*", f"*{r['auc_verdict']}*")
        assert f"{r['final_iqm']:.1f} [{r['final_iqm_lo']:.1f}, {r['final_iqm_hi']:.1f}]" in row
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert len(links) == len(plots.FIGURES)
    assert all((results / link).is_file() for link in links)
    assert report.write_report(results, n_resamples=100).read_text() == text
    assert "Environment CartPole-v1, 50,000" in text
    assert report.NORM_HEADER not in text and report.MIXED_ENV_NOTE not in text


def test_report_of_mixed_env_study_lists_each_env(tmp_path):
    results = tmp_path / "results"
    d = make_study(results, name="env_version", variants=("baseline", "v0"), seeds=8, evals=5,
                   env_id={"baseline": "CartPole-v1", "v0": "CartPole-v0"},
                   flat={"baseline": 475, "v0": 200})
    plots.make_figures(d, n_resamples=100)
    text = report.write_report(results, n_resamples=100).read_text()
    assert "Environments CartPole-v1 (baseline), CartPole-v0 (v0), 50,000 environment" in text
    assert report.MIXED_ENV_NOTE in text and "Incomplete" not in text
    header = next(line for line in text.splitlines() if line.startswith("| variant"))
    assert "| final mean [95% CI] | normalised final IQM [95% CI] | solved fraction |" in header
    rows = [line for line in text.splitlines() if line.startswith(("| **baseline", "| v0"))]
    assert rows[0].startswith("| **baseline** | 8 | 475.0 [475.0, 475.0] | "
                              "475.0 [475.0, 475.0] | 0.950 [0.950, 0.950] | 1.00 |")
    assert rows[1].startswith("| v0 | 8 | 200.0 [200.0, 200.0] | 200.0 [200.0, 200.0] | "
                              "1.000 [1.000, 1.000] | 1.00 |")
    cells = [c.strip() for c in rows[1].split("|")]
    # P(improvement) and verdict on the final score, then on the AUC
    assert (cells[-7], cells[-5]) == ("1.00 [0.63, 1.00]", "*better*")  # 0.025^(1/8)
    assert cells[-2] == "*better*"
    # the opening table: what v0 changes, its verdicts, and no ceiling (475 < 500)
    overview = next(line for line in text.splitlines() if line.startswith("| [env_version]"))
    assert "| v0 | env_id=CartPole-v0 |" in overview
    assert "| *better* | *better* | 8 v 8 |" in overview
    assert "At ceiling" not in text
    assert report.write_report(results, n_resamples=100).read_text() == text


def test_damaged_studies_stop_the_report_naming_each(tmp_path):
    results = tmp_path / "results"
    d = make_study(results, name="broken", seeds=3, evals=4)
    os.remove(d / "evals.csv")
    make_study(results, name="fine", seeds=3, evals=4)
    orphan = results / "orphan"
    orphan.mkdir()
    (orphan / "episodes.csv").write_text("study,variant,seed,episode,env_step,return\n")
    out = tmp_path / "out" / "R.md"
    with pytest.raises(StoreError) as err:
        report.write_report(results, out=out)
    msg = str(err.value)
    assert f"{d / 'evals.csv'}: baseline[seeds 0-2]: file missing" in msg
    assert f"{orphan / 'run.json'}: missing" in msg and "fine" not in msg
    assert not out.exists()


def test_unfinished_variant_is_reported_as_incomplete(tmp_path):
    results = tmp_path / "results"
    d = make_study(results, name="partial", seeds=3, evals=4)
    run = json.loads((d / "run.json").read_text())
    run["variants"]["soft_target"]["seeds"] = [0, 1, 2, 3]  # one chunk still to train
    (d / "run.json").write_text(json.dumps(run))
    text = report.write_report(results).read_text()
    assert "variant soft_target: seeds [3] not trained yet" in text
    assert "| soft_target (incomplete) |" in text


def test_empty_results_dir(tmp_path):
    assert "No studies found" in report.write_report(tmp_path).read_text()


def test_end_of_run_table_by_hand() -> None:
    summary = pd.DataFrame([
        {"variant": "base", "seeds": 4, "final_iqm": 500.0, "final_iqm_lo": 490.0,
         "final_iqm_hi": 500.0, "solved_fraction": 0.75, "verdict": "baseline",
         "auc_verdict": "baseline"},
        {"variant": "v", "seeds": 4, "final_iqm": 9.25, "final_iqm_lo": 9.0,
         "final_iqm_hi": 10.0, "solved_fraction": float("nan"), "verdict": "worse",
         "auc_verdict": "inconclusive"}])
    assert overview.end_of_run(summary, "base").splitlines() == [
        "variant          seeds  final IQM [95% CI]    solved  verdict on final  verdict on AUC",
        "base (baseline)  4      500.0 [490.0, 500.0]  3/4     baseline          baseline",
        "v                4      9.2 [9.0, 10.0]       —       worse             inconclusive"]


def test_report_opens_with_contents_whose_links_resolve(tmp_path):
    results = tmp_path / "results"
    make_study(results, name="target", seeds=5, evals=8)
    text = report.write_report(results, n_resamples=100).read_text()
    lines = text.splitlines()
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[0] == "## Contents"
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    targets = re.findall(r"\]\(#([^)]+)\)", contents)
    assert "target" in targets and "all-comparisons" in targets
    assert set(targets) <= anchors(text)
    assert headings.index("## All comparisons") < headings.index("## target")
