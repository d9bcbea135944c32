"""dqn.store.reproduce: a fresh run against committed results, on synthetic study folders (the
fast learning tier applies it to real training)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from analysis_fixtures import make_study

from dqn.base.provenance import NUMERICS
from dqn.store.reproduce import differences
from dqn.store.tables import read_text


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    committed = make_study(tmp_path / "committed", seeds=3)
    run = json.loads((committed / "run.json").read_text())
    for meta in run["variants"].values():  # as the runner records them
        for chunk in meta["chunks"]:
            chunk["numerics"] = NUMERICS
    (committed / "run.json").write_text(json.dumps(run))
    fresh = tmp_path / "fresh" / committed.name
    shutil.copytree(committed, fresh)
    return committed, fresh


def test_identical_rows_agree(tmp_path: Path) -> None:
    committed, fresh = _pair(tmp_path)
    assert differences(fresh, committed) == []
    assert differences(fresh, tmp_path / "nowhere") == []


def test_a_changed_value_is_named_with_its_row(tmp_path: Path) -> None:
    committed, fresh = _pair(tmp_path)
    evals = read_text(fresh / "evals.csv")
    i = evals.index[(evals["variant"] == "baseline") & (evals["seed"] == "1")][4]
    old = evals.loc[i, "return"]
    evals.loc[i, "return"] = "123.4"
    evals.to_csv(fresh / "evals.csv", index=False)
    found = differences(fresh, committed)
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
    (found,) = differences(fresh, committed)
    assert "toy / no_target" in found and "60 rows committed, 59 now" in found


def test_other_numerics_or_another_config_are_not_compared_row_by_row(tmp_path: Path) -> None:
    committed, fresh = _pair(tmp_path)
    run = json.loads((committed / "run.json").read_text())
    for chunk in run["variants"]["baseline"]["chunks"]:
        chunk["numerics"] = "old"
    run["variants"]["soft_target"]["config_hash"] = "another"
    (committed / "run.json").write_text(json.dumps(run))
    found = differences(fresh, committed)
    assert len(found) == 1, found
    assert f"numerics ['old'], the code is numerics {NUMERICS!r}: re-run the study" in found[0]
