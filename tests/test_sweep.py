"""Sweeps: grid parsing, the study file a grid amounts to, and a tiny sweep end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from study_fixtures import memo_train

from dqn.cli.main import main
from dqn.run import studyfile, sweep


def test_grid_values_are_toml_and_lists_keep_their_commas() -> None:
    assert sweep.parse_grid(["lr=1e-3,3e-4", "hidden=[64,64],[128,128]", "env_id=CartPole-v0"]) \
        == {"lr": [0.001, 0.0003], "hidden": [[64, 64], [128, 128]], "env_id": ["CartPole-v0"]}


@pytest.mark.parametrize("items, message", [
    (["lr"], "--grid 'lr': expected KEY=V1,V2"), (["lr=,"], "--grid 'lr=,': expected"),
    (["lr=1", "lr=2"], "key 'lr' given twice"), ([], "at least one --grid"),
])
def test_bad_grids(items: list[str], message: str) -> None:
    with pytest.raises(studyfile.StudyError, match=message):
        sweep.parse_grid(items)


def test_the_study_file_of_a_grid(tmp_path: Path) -> None:
    """2 x 2 points, one of them the default config (lr 1e-3, batch 32): three variants and
    the baseline, each with exactly its point's keys."""
    s = sweep.make(["lr=1e-3,3e-4", "batch_size=32,64"], tmp_path, seeds=4,
                   base={"total_steps": 1000})
    assert s.path == tmp_path / "sweep-lr_0.001x0.0003-batch_size_32x64.toml"
    assert s.seeds == 4 and s.base == {"total_steps": 1000}
    assert s.variants == {"baseline": {},
                          "lr_0.001-batch_size_64": {"lr": 0.001, "batch_size": 64},
                          "lr_0.0003-batch_size_32": {"lr": 0.0003, "batch_size": 32},
                          "lr_0.0003-batch_size_64": {"lr": 0.0003, "batch_size": 64}}


def test_a_bad_grid_key_writes_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sweeps"
    assert main(["sweep", "--grid", "learning_rate=1e-3,3e-4", "--out", str(out)]) == 2
    assert "did you mean 'lr'?" in capsys.readouterr().err
    assert not out.exists()


def test_a_tiny_sweep_end_to_end(tmp_path: Path, monkeypatch) -> None:
    memo_train(monkeypatch)
    out = tmp_path / "sweeps"
    assert main(["sweep", "--grid", "target='none','soft'", "--seeds", "2", "--steps", "300",
                 "--set", "learning_starts=100", "--set", "eval_every=150",
                 "--set", "buffer_size=300", "--set", "device='cpu'",
                 "--out", str(out), "--no-figures", "--name", "targets"]) == 0
    run = json.loads((out / "targets" / "run.json").read_text())
    assert list(run["variants"]) == ["baseline", "target_none", "target_soft"]
    assert {v: m["config"]["target"] for v, m in run["variants"].items()} == {
        "baseline": "hard_steps", "target_none": "none", "target_soft": "soft"}
    assert (out / "targets.toml").exists()
