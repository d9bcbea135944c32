"""Adaptive studies: the design from study file and command line, the stage loop through the
real runner, resuming, and the sequential verdicts in run.json, summary.csv and REPORT.md.
(The group-sequential procedure itself is simulated in test_sequential.py.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from study_fixtures import TINY_BODY, memo_train

from dqn.analysis import scoring
from dqn.cli.main import main
from dqn.run import adaptive, runner, studyfile
from dqn.stats import adaptive_verdicts
from dqn.stats.sequential import Decision, Design
from dqn.store import journal

ADAPTIVE_TOP = 'question = "Adaptive."\n'


def write(tmp_path: Path, top: str = "", name: str = "ad") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(ADAPTIVE_TOP + top + TINY_BODY)
    return path


# --- the design -----------------------------------------------------------------------------

def test_design_sources_in_order(tmp_path: Path) -> None:
    fixed = studyfile.load(write(tmp_path, "seeds = 4\n", "fixed"))
    assert adaptive.design_for(fixed) is None
    assert adaptive.design_for(fixed, adaptive=True) == Design()
    assert adaptive.design_for(fixed, adaptive=True, quick=True) == Design(stage=3, max_seeds=6)
    table = studyfile.load(write(tmp_path, '[adaptive]\nstage = 5\nmax_seeds = 40\n'
                                           'spending = "obrien_fleming"\n', "table"))
    assert adaptive.design_for(table) == Design(5, 40, spending="obrien_fleming")
    assert adaptive.design_for(table, max_seeds=60) == Design(5, 60, spending="obrien_fleming")


@pytest.mark.parametrize("kwargs, message", [
    ({"stage": 5}, "command line: --stage 5 needs --adaptive"),
    ({"max_seeds": 50}, "command line: --max-seeds 50 needs --adaptive"),
    ({"adaptive": True, "stage": 1}, "command line: stage: 1 must be an integer of at least 2"),
    ({"adaptive": True, "stage": 30, "max_seeds": 20}, "command line: stage: 30 seeds is more"),
])
def test_bad_command_line_design(tmp_path: Path, kwargs: dict, message: str) -> None:
    s = studyfile.load(write(tmp_path, "seeds = 4\n"))
    with pytest.raises(studyfile.StudyError, match=message):
        adaptive.design_for(s, **kwargs)


@pytest.mark.parametrize("top, message", [
    ("seeds = 20\n[adaptive]\n", "ad.toml: key 'seeds': 20 cannot go with \\[adaptive\\]"),
    ("[adaptive]\nstages = 5\n", "ad.toml: \\[adaptive\\]: unknown key 'stages'.*stage"),
    ("[adaptive]\nspending = 'linear'\n", "ad.toml: \\[adaptive\\] spending: 'linear'"),
    ("[adaptive]\nstage = 20\nmax_seeds = 10\n", "ad.toml: \\[adaptive\\] stage: 20 seeds"),
    ("adaptive = 3\n", "ad.toml: key 'adaptive': 3 must be a table"),
])
def test_bad_adaptive_table(tmp_path: Path, top: str, message: str) -> None:
    with pytest.raises(studyfile.StudyError, match=message):
        studyfile.load(write(tmp_path, top))


@pytest.mark.parametrize("flag", [["--seeds", "5"], ["--variants", "no_target"]])
def test_fixed_only_flags_refused_before_anything_is_written(tmp_path: Path, monkeypatch,
                                                            capsys, flag: list[str]) -> None:
    monkeypatch.setattr(studyfile, "STUDIES_DIR", tmp_path)
    write(tmp_path, "seeds = 4\n")
    out = tmp_path / "results"
    assert main(["study", "ad", "--adaptive", "--out", str(out), *flag]) == 2
    assert f"command line: {flag[0]} {flag[1]} cannot go with an adaptive run" in \
        capsys.readouterr().err
    assert not out.exists()


# --- the stage loop through the real runner -------------------------------------------------

def test_quick_adaptive_study_end_to_end(tmp_path: Path, monkeypatch, capsys) -> None:
    """The real no_target study, --quick --adaptive: 3 seeds a stage, up to 6. Three seeds
    against three can never reach a stage's level, so both stages run and every comparison
    ends inconclusive; a second run trains nothing."""
    out = tmp_path / "results"
    assert main(["study", "no_target", "--quick", "--adaptive", "--out", str(out)]) == 0
    folder = out / "no_target"
    run = json.loads((folder / "run.json").read_text())
    assert run["adaptive"]["design"] == Design(3, 6).to_dict()
    assert run["adaptive"]["decisions"]["no_target"]["final"]["verdict"] == "inconclusive"
    assert {v: m["seeds"] for v, m in run["variants"].items()} == {
        "baseline": list(range(6)), "no_target": list(range(6))}
    summary = pd.read_csv(folder / "summary.csv").set_index("variant")
    assert (summary["design"] == "adaptive").all()
    assert summary.loc["no_target", ["verdict", "auc_verdict"]].tolist() == [
        "inconclusive", "inconclusive"]
    assert (folder / "seeds_used.png").exists()
    assert "stage 2/2: 6 seeds for baseline, no_target" in capsys.readouterr().out

    calls = memo_train(monkeypatch)
    assert main(["study", "no_target", "--quick", "--adaptive", "--out", str(out),
                 "--no-figures"]) == 0
    assert calls == []  # resumed: everything was decided already


@pytest.fixture
def staged(tmp_path: Path, monkeypatch):
    """A tiny study with two variants, and a decide() that settles variant `no_target` at
    stage 1 whatever the data: the loop must stop giving it seeds."""
    path = tmp_path / "ad.toml"
    path.write_text(ADAPTIVE_TOP + TINY_BODY + '\n[variants.batchnorm]\nbatchnorm = true\n')
    real = adaptive.decide

    def decide(scores, variants, baseline, compared_on, design, tests, cap=None):
        assert cap == 500.0  # CartPole-v1's final scores: the cap the summary uses too
        decided = real(scores, variants, baseline, compared_on, design, tests, cap=cap)
        for q, d in decided.items():
            if q[0] == "no_target" and d.seeds >= design.stage:
                decided[q] = Decision("worse", 1, design.stage, 0.0, 1.0, 0.01)
        return decided

    monkeypatch.setattr(adaptive, "decide", decide)
    return studyfile.load(path), memo_train(monkeypatch)


def test_decided_variants_stop_receiving_seeds(tmp_path: Path, staged) -> None:
    s, calls = staged
    out = adaptive.run(s, Design(2, 6), out_dir=tmp_path / "r", figures=False, progress=False)
    run = json.loads((out / "run.json").read_text())
    seeds = {v: m["seeds"] for v, m in run["variants"].items()}
    assert seeds == {"baseline": list(range(6)), "no_target": [0, 1],
                     "batchnorm": list(range(6))}
    # stage 1 trains all three, stages 2 and 3 only the open variant and the baseline
    assert sorted(len(c[1]) for c in calls) == [2, 2, 2, 2, 2, 2, 2]
    decisions = run["adaptive"]["decisions"]
    assert decisions["no_target"]["auc"]["verdict"] == "worse"
    assert decisions["batchnorm"]["final"]["verdict"] == "inconclusive"


def test_resume_and_design_guards(tmp_path: Path, staged) -> None:
    s, calls = staged
    out_dir = tmp_path / "r"
    adaptive.run(s, Design(2, 4), out_dir=out_dir, figures=False, progress=False)
    with pytest.raises(studyfile.StudyError, match=r"another adaptive design \(max_seeds: 4 -> "
                                                   r"6\)"):
        adaptive.run(s, Design(2, 6), out_dir=out_dir, figures=False, progress=False)
    with pytest.raises(studyfile.StudyError, match="gathered adaptively.*--adaptive"):
        runner.run(s, out_dir=out_dir, seeds=4, figures=False, progress=False)
    calls.clear()
    adaptive.run(s, Design(2, 4), out_dir=out_dir, figures=False, progress=False)
    assert calls == []
    # a fixed run that starts over drops the adaptive record
    runner.run(s, out_dir=out_dir, seeds=2, force=True, figures=False, progress=False)
    assert "adaptive" not in json.loads((out_dir / "ad" / "run.json").read_text())


def test_an_interrupted_stage_is_finished_first(tmp_path: Path, staged) -> None:
    s, calls = staged
    out_dir = tmp_path / "r"
    adaptive.run(s, Design(2, 4), out_dir=out_dir, figures=False, progress=False)
    # as if batchnorm's stage-2 unit were lost: run.json still asks for its seeds 0-3, but
    # only the unit of seeds 0-1 is recorded (the other's rows now belong to no unit)
    folder = out_dir / "ad"
    run = json.loads((folder / "run.json").read_text())
    run["variants"]["batchnorm"]["chunks"] = [
        ch for ch in run["variants"]["batchnorm"]["chunks"] if ch["seeds"] == [0, 1]]
    (folder / "run.json").write_text(json.dumps(run))
    calls.clear()
    adaptive.run(s, Design(2, 4), out_dir=out_dir, figures=False, progress=False)
    assert calls == [("hard_steps", [2, 3])]


# --- verdicts in run.json, summary.csv and the report ----------------------------------------

def test_adjusted_p_by_hand() -> None:
    assert adaptive_verdicts.adjusted(0.001, 0.004, 0.05) == pytest.approx(0.0125)
    assert adaptive_verdicts.adjusted(0.01, 0.004, 0.05) == pytest.approx(0.125)
    assert adaptive_verdicts.adjusted(0.1, 0.004, 0.05) == 1.0
    assert math.isnan(adaptive_verdicts.adjusted(math.nan, 0.004, 0.05))


def scores_frame(groups: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"variant": v, "seed": i, "final": x, "final_norm": x / 500, "auc": x / 500,
             "steps_to_threshold": math.nan, "reached": False, "collapsed": False,
             "diverged": False, "evals": 3, "last_step": 1000.0}
            for v, xs in groups.items() for i, x in enumerate(xs)]
    return pd.DataFrame(rows, columns=scoring.SCORE_COLUMNS)


def test_summary_shows_the_sequential_verdicts() -> None:
    """7 seeds of `bad`, all below the baseline's: decided worse at stage 1 of a design of
    stages of 7 up to 14, with the exact p = 2 / C(14, 7) of complete separation and the
    level alpha ln(1 + (e - 1) / 2) / H. H counts the nulls that can be true at once: the AUC's
    two per variant exclude each other (1 each), CartPole's final scores are tested for
    equivalence on cap rates (2 each): H = 2 x 1 + 2 x 2 = 6."""
    design = Design(stage=7, max_seeds=14)
    scores = scores_frame({"baseline": [100.0 + i for i in range(14)],
                           "bad": [float(i) for i in range(7)],
                           "other": [100.5 + i for i in range(7)]})
    out = scoring.summarize_scores(scores, ["baseline", "bad", "other"], "baseline",
                                   "CartPole-v1", n_resamples=1000, design=design)
    r = out.set_index("variant")
    assert r.loc["bad", "verdict"] == "worse" and r.loc["bad", "auc_verdict"] == "worse"
    assert r.loc["bad", "decided_stage"] == 1
    p = 2 / math.comb(14, 7)
    level = 0.05 * math.log(1 + (math.e - 1) * 0.5) / 6
    assert r.loc["bad", "verdict_p"] == pytest.approx(p)
    assert r.loc["bad", "verdict_p_adj"] == pytest.approx(p * 0.05 / level)
    assert r.loc["other", "verdict"] == "open" and math.isnan(r.loc["other", "decided_stage"])
    assert r.loc["baseline", "verdict"] == "baseline"
    assert (out["design"] == "adaptive").all() and (out["family_size"] == 6).all()
    fixed = scoring.summarize_scores(scores, ["baseline", "bad", "other"], "baseline",
                                     "CartPole-v1", n_resamples=1000)
    assert (fixed["design"] == "fixed").all() and fixed["decided_stage"].isna().all()


def test_record_adaptive_keeps_every_other_key(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"format": 3, "variants": {}, "x": 1}))
    journal.record_entry(tmp_path, "adaptive", {"design": Design().to_dict(), "decisions": {}})
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["x"] == 1 and run["adaptive"]["design"]["stage"] == 10
    journal.record_entry(tmp_path, "adaptive", None)
    assert "adaptive" not in json.loads((tmp_path / "run.json").read_text())
    journal.record_entry(tmp_path / "none", "adaptive", None)
    assert not (tmp_path / "none").exists()


def test_record_writes_json_without_nan() -> None:
    d = {("v", "final"): Decision("open", None, 0, math.nan, math.nan, math.nan)}
    text = json.dumps(adaptive_verdicts.record(d, Design()), allow_nan=False)
    assert json.loads(text)["decisions"]["v"]["final"]["p"] is None
    assert np.isnan(adaptive_verdicts.adjusted(1.0, math.nan, 0.05))
