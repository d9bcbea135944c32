"""--set KEY=VALUE: parsing, validation before anything is written, the record in run.json,
and the guard that keeps the study's published results folder untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from study_fixtures import memo_train, snapshot, tiny_study_text

from dqn.cli import main as cli
from dqn.cli.main import main
from dqn.run import studyfile


@pytest.mark.parametrize("item, value", [
    ("lr=3e-4", 0.0003), ("batchnorm=true", True), ("hidden=[128, 128]", [128, 128]),
    ("env_id=CartPole-v0", "CartPole-v0"), ("target='none'", "none"), ("gamma = 0.99", 0.99),
])
def test_values_are_read_as_toml_else_as_text(item: str, value) -> None:
    assert list(studyfile.parse_overrides([item]).values()) == [value]


@pytest.mark.parametrize("item", ["lr", "=3", "lr="])
def test_a_set_without_key_and_value_is_an_error(item: str) -> None:
    with pytest.raises(studyfile.StudyError, match=f"--set '{item}': expected KEY=VALUE"):
        studyfile.parse_overrides([item])


def test_settings_label_names_the_folder() -> None:
    assert studyfile.settings_label({"lr": 0.0003, "hidden": [32, 32],
                                     "total_steps": 100000}) == \
        "lr_0.0003-hidden_32x32-total_steps_100000"


@pytest.fixture
def study_dirs(tmp_path: Path, monkeypatch):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "tiny.toml").write_text(tiny_study_text("Overrides.", 2))
    monkeypatch.setattr(studyfile, "STUDIES_DIR", tmp_path / "studies")
    monkeypatch.setattr(cli, "RESULTS_DIR", tmp_path / "results")
    memo_train(monkeypatch)
    return tmp_path / "results"


@pytest.mark.parametrize("args, message", [
    (["--set", "learning_rate=3e-4"], "unknown key 'learning_rate' (value 0.0003) (did you "
                                      "mean 'lr'?"),
    (["--set", "lr=fast"], "key 'lr': 'fast' is not a number"),
    (["--set", "gamma=1.5"], "'gamma'"),
])
def test_bad_overrides_are_refused_before_anything_is_written(study_dirs: Path, capsys,
                                                              args, message) -> None:
    assert main(["study", "tiny", *args]) == 2
    assert message in capsys.readouterr().err
    assert not study_dirs.exists()


def test_overrides_go_to_their_own_folder_and_are_recorded(study_dirs: Path) -> None:
    assert main(["study", "tiny", "--no-figures"]) == 0
    published = snapshot(study_dirs / "tiny")
    assert main(["study", "tiny", "--set", "lr=3e-4", "--steps", "200", "--no-figures"]) == 0
    assert snapshot(study_dirs / "tiny") == published
    run = json.loads((study_dirs / "tiny-lr_0.0003-total_steps_200" / "run.json").read_text())
    assert run["settings"] == {"lr": 0.0003, "total_steps": 200}
    assert {m["config"]["lr"] for m in run["variants"].values()} == {0.0003}
    # with --out the user chose the folder: the study's own name under it
    assert main(["study", "tiny", "--set", "lr=3e-4", "--out", str(study_dirs / "mine"),
                 "--no-figures"]) == 0
    assert json.loads((study_dirs / "mine" / "tiny" / "run.json").read_text())["settings"] == \
        {"lr": 0.0003}
