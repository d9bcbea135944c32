"""dqn.store.reproduce: a fresh run against committed results, on synthetic study folders (the
fast learning tier applies it to real training)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from analysis_fixtures import make_study

from dqn.base.provenance import NUMERICS
from dqn.store.reproduce import compare, config_changes
from dqn.store.tables import read_text

CPU = {"machine": "x86_64", "aten": "AVX2", "probe": "0123456789abcdef"}


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    committed = make_study(tmp_path / "committed", seeds=3)
    run = json.loads((committed / "run.json").read_text())
    for meta in run["variants"].values():  # as the runner records them
        for chunk in meta["chunks"]:
            chunk["numerics"] = NUMERICS
            chunk["cpu_numerics"] = CPU
    (committed / "run.json").write_text(json.dumps(run))
    fresh = tmp_path / "fresh" / committed.name
    shutil.copytree(committed, fresh)
    return committed, fresh


def test_identical_rows_agree(tmp_path: Path) -> None:
    committed, fresh = _pair(tmp_path)
    assert compare(fresh, committed).failures == []
    assert compare(fresh, tmp_path / "nowhere").failures == []


def test_a_changed_value_is_named_with_its_row(tmp_path: Path) -> None:
    committed, fresh = _pair(tmp_path)
    evals = read_text(fresh / "evals.csv")
    i = evals.index[(evals["variant"] == "baseline") & (evals["seed"] == "1")][4]
    old = evals.loc[i, "return"]
    evals.loc[i, "return"] = "123.4"
    evals.to_csv(fresh / "evals.csv", index=False)
    found = compare(fresh, committed).failures
    assert len(found) == 1, found
    step = evals.loc[i, "env_step"]
    assert "toy / baseline, seeds 0-2: evals.csv differs" in found[0]
    assert f"seed 1, env_step {step}: return was {old!r}, now '123.4'" in found[0]
    assert "bump dqn.base.provenance.NUMERICS" in found[0]


def test_a_missing_row_is_counted(tmp_path: Path) -> None:
    committed, fresh = _pair(tmp_path)
    evals = read_text(fresh / "evals.csv")
    last = evals.index[(evals["variant"] == "no_target") & (evals["seed"] == "2")][-1]
    evals.drop(index=last).to_csv(fresh / "evals.csv", index=False)
    (found,) = compare(fresh, committed).failures
    assert "toy / no_target" in found and "60 rows committed, 59 now" in found


def _edit_run(folder: Path, edit) -> None:
    run = json.loads((folder / "run.json").read_text())
    edit(run)
    (folder / "run.json").write_text(json.dumps(run))


def test_rows_of_other_numerics_are_stale_not_compared(tmp_path: Path) -> None:
    committed, fresh = _pair(tmp_path)

    def old_numerics(run):
        for chunk in run["variants"]["baseline"]["chunks"]:
            chunk["numerics"] = "old"
    _edit_run(committed, old_numerics)
    found = compare(fresh, committed)
    assert len(found.failures) == 1, found
    assert f"numerics ['old'], the code is numerics {NUMERICS!r}: re-run the study" in \
        found.failures[0]
    assert found.compared == ["toy / no_target, seeds 0-2", "toy / soft_target, seeds 0-2"]


def test_a_changed_config_names_the_keys(tmp_path: Path) -> None:
    committed, fresh = _pair(tmp_path)

    def other_gamma(run):
        meta = run["variants"]["no_target"]
        meta["config_hash"], meta["config"]["gamma"] = "another", 0.5
    _edit_run(fresh, other_gamma)
    (found,) = compare(fresh, committed).failures
    assert "toy / no_target, seeds 0-2: the config differs" in found
    assert "gamma: '(absent)' -> 0.5" in found


def test_a_shorter_training_is_not_compared(tmp_path: Path) -> None:
    committed, fresh = _pair(tmp_path)

    def shorter(run):
        for meta in run["variants"].values():
            meta["config_hash"], meta["config"]["total_steps"] = "another", 100
    _edit_run(fresh, shorter)
    found = compare(fresh, committed)
    assert found.failures == found.compared == found.skipped == []


def test_rows_from_other_cpu_numerics_are_skipped_with_the_reason(tmp_path: Path) -> None:
    committed, fresh = _pair(tmp_path)

    def elsewhere(run):
        for chunk in run["variants"]["baseline"]["chunks"]:
            chunk["cpu_numerics"] = {**CPU, "probe": "fedcba9876543210"}
    _edit_run(committed, elsewhere)
    found = compare(fresh, committed)
    assert found.failures == [] and len(found.compared) == 2
    (why,) = found.skipped
    assert "toy / baseline, seeds 0-2" in why and "fedcba9876543210" in why


def test_config_changes_reads_absent_later_keys_as_their_defaults() -> None:
    assert config_changes({"gamma": 0.9, "n_step": 1}, {"gamma": 0.9}) == []
    assert config_changes({"gamma": 0.9, "n_step": 3}, {"gamma": 0.99}) == [
        "gamma: 0.99 -> 0.9", "n_step: 1 -> 3"]
