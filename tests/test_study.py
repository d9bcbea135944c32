"""Study files, the runner's outputs, resume, and rejection of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from study_fixtures import tiny_study_text

import dqn.core.train
from dqn.base import provenance
from dqn.cli.main import main
from dqn.core.records import DIAGNOSTIC_COLUMNS, EPISODE_COLUMNS, EVAL_COLUMNS
from dqn.run import runner, studyfile
from dqn.store import store

TINY = tiny_study_text("A tiny study for tests.", 2)


def write_study(tmp_path: Path, text: str = TINY, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("path", sorted(studyfile.STUDIES_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_study_file_parses_and_validates(path: Path) -> None:
    s = studyfile.load(path)
    assert s.question and s.seeds > 0 and s.baseline in s.variants
    assert set(s.configs()) == set(s.variants)


def test_required_studies_exist() -> None:
    required = {"baseline", "no_target", "batchnorm", "terminal_masking", "memory_clearing",
                "reward_scaling", "gamma"}
    assert required <= set(studyfile.available())


def test_quick_run_writes_documented_tables(tmp_path: Path) -> None:
    s = studyfile.load(write_study(tmp_path))
    out = runner.run(s, out_dir=tmp_path / "results", figures=False, progress=False)
    columns = {"episodes": EPISODE_COLUMNS, "evals": EVAL_COLUMNS,
               "diagnostics": DIAGNOSTIC_COLUMNS}
    for table, cols in columns.items():
        df = pd.read_csv(out / f"{table}.csv")
        assert list(df.columns) == ["study", "variant", *cols]
        pairs = set(zip(df["variant"], df["seed"], strict=True))
        assert pairs == {(v, seed) for v in ("baseline", "no_target") for seed in (0, 1)}
    evals = pd.read_csv(out / "evals.csv")
    assert sorted(evals["env_step"].unique()) == [150, 300]
    run = json.loads((out / "run.json").read_text())
    assert run["study"] == "tiny" and run["baseline"] == "baseline"
    for meta in run["variants"].values():
        assert {"config", "config_hash", "git_commit", "versions", "device", "wall_time_s",
                "seed_steps_per_s", "seeds", "diverged_seeds"} <= set(meta)
        assert set(meta["versions"]) == {"python", "torch", "gymnasium", "numpy"}


def test_quick_flag_shrinks_any_study() -> None:
    configs = studyfile.find("gamma").configs(quick=True)
    assert all(c.total_steps == studyfile.QUICK["total_steps"] for c in configs.values())
    assert {c.gamma for c in configs.values()} == {0.9, 0.99, 0.995, 1.0}


@pytest.mark.parametrize("own, quick", [(None, 64), (100, 100), (1000, 500)])
def test_quick_keeps_a_variants_own_learning_starts_below_its_value(tmp_path: Path, own,
                                                                     quick) -> None:
    """--quick lowers learning_starts to 500 at most; a variant's own smaller value (or the
    default, 64) stays."""
    text = TINY.replace("learning_starts = 100\n", "").replace(
        "total_steps = 300", "total_steps = 5000").replace(
        "[variants.no_target]", "[variants.no_target]" + (
            f"\nlearning_starts = {own}" if own is not None else ""))
    configs = studyfile.load(write_study(tmp_path, text)).configs(quick=True)
    assert configs["no_target"].learning_starts == quick
    assert configs["baseline"].learning_starts == 64


def test_resume_trains_only_the_missing_variant(tmp_path: Path, monkeypatch) -> None:
    s = studyfile.load(write_study(tmp_path))
    whole = runner.run(s, out_dir=tmp_path / "whole", figures=False, progress=False)

    real_train = dqn.core.train.train
    trained: list[str] = []

    def crash_on_second(config, seeds, progress=None):
        trained.append(config.target)
        if config.target == "none":
            raise RuntimeError("simulated crash in the second variant")
        return real_train(config, seeds, progress)

    monkeypatch.setattr(dqn.core.train, "train", crash_on_second)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.run(s, out_dir=tmp_path / "resumed", figures=False, progress=False)
    partial = tmp_path / "resumed" / "tiny"
    assert set(pd.read_csv(partial / "evals.csv")["variant"]) == {"baseline"}
    assert not list(partial.glob(".*.tmp"))

    def record(config, seeds, progress=None):
        trained.append(config.target)
        return real_train(config, seeds, progress)

    trained.clear()
    monkeypatch.setattr(dqn.core.train, "train", record)
    runner.run(s, out_dir=tmp_path / "resumed", figures=False, progress=False)
    assert trained == ["none"]  # baseline was skipped
    for table in store.TABLES:
        pd.testing.assert_frame_equal(pd.read_csv(partial / f"{table}.csv"),
                                      pd.read_csv(whole / f"{table}.csv"))

    trained.clear()
    runner.run(s, out_dir=tmp_path / "resumed", figures=False, progress=False, force=True)
    assert trained == ["hard_steps", "none"]


def test_changed_config_is_not_skipped(tmp_path: Path, monkeypatch) -> None:
    s = studyfile.load(write_study(tmp_path))
    runner.run(s, out_dir=tmp_path / "r", figures=False, progress=False, variants=["baseline"])
    calls = []
    real_train = dqn.core.train.train
    monkeypatch.setattr(dqn.core.train, "train",
                        lambda c, seeds, progress=None: calls.append(c) or real_train(c, seeds))
    runner.run(s, out_dir=tmp_path / "r", figures=False, progress=False, variants=["baseline"],
               steps=200)
    assert len(calls) == 1 and calls[0].total_steps == 200


BAD_FILES = {
    "unknown key": (TINY.replace("[variants.no_target]", "[variants.no_target]\ngama = 0.9"),
                    ["tiny.toml", "no_target", "'gama'", "did you mean 'gamma'"]),
    "wrong type": (TINY.replace('target = "none"', 'target = "none"\nbatch_size = "32"'),
                   ["tiny.toml", "no_target", "'batch_size'", "'32'"]),
    "seeds zero": (TINY.replace("seeds = 2", "seeds = 0"), ["tiny.toml", "'seeds'", "0"]),
    "steps below learning starts": (TINY.replace("total_steps = 300", "total_steps = 50"),
                                    ["tiny.toml", "'learning_starts'", "100"]),
    "unknown top-level key": ("seed = 3\n" + TINY, ["tiny.toml", "'seed'", "'seeds'"]),
    "broken toml": (TINY + "\n[variants.x\n", ["tiny.toml", "TOML"]),
    "bad literal": (TINY.replace('target = "none"', 'target = "nope"'),
                    ["tiny.toml", "'target'", "'nope'"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_study_files_are_rejected_before_training(tmp_path: Path, case: str,
                                                      monkeypatch) -> None:
    text, needles = BAD_FILES[case]
    results = tmp_path / "results"
    (results / "tiny").mkdir(parents=True)
    (results / "tiny" / "evals.csv").write_text("untouched\n")
    before = snapshot(results)
    monkeypatch.setattr(dqn.core.train, "train", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(studyfile.StudyError) as err:
        runner.run(studyfile.load(write_study(tmp_path, text)), out_dir=results)
    for needle in needles:
        assert needle in str(err.value)
    assert snapshot(results) == before


@pytest.mark.parametrize("args, needle", [
    (["--seeds", "0"], "seeds: 0"),
    (["--steps", "10"], "learning_starts"),
    (["--variants", "baseline,nope"], "unknown variant 'nope'"),
    (["--device", "tpu"], "'device'"),
])
def test_bad_command_line_is_rejected_before_training(tmp_path: Path, args, needle, capsys,
                                                      monkeypatch) -> None:
    monkeypatch.setattr(dqn.core.train, "train", lambda *a, **k: pytest.fail("trained"))
    assert main(["study", "no_target", "--out", str(tmp_path / "r"), *args]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_unknown_or_missing_study_lists_the_available_ones(capsys) -> None:
    assert main(["study", "no_targt"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'no_target'" in err and "memory_clearing" in err
    assert main(["study"]) == 0  # `make study` without NAME: the list, not an error
    assert "Does DQN need a target network?" in capsys.readouterr().out


def test_listing_wraps_to_the_width() -> None:
    lines = studyfile.listing(width=80).splitlines()
    assert max(map(len, lines)) <= 80 and len(lines) > len(studyfile.available()) + 1
    assert "original_six" in studyfile.listing() and "[adaptive]" in studyfile.listing()


def test_provenance_is_dirty_only_for_changes_to_what_computes_results(tmp_path: Path,
                                                                       monkeypatch) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    for name in ("dqn/core/agent.py", "results/s/run.json", "README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("v1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "one")
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    (tmp_path / "results/s/run.json").write_text("v2\n")  # a re-run of tracked results
    (tmp_path / "README.md").write_text("v2\n")
    assert not provenance.git_commit().endswith("-dirty")
    (tmp_path / "dqn/core/agent.py").write_text("v2\n")
    assert provenance.git_commit().endswith("-dirty")


def test_a_study_file_anywhere_by_its_path(tmp_path: Path, capsys) -> None:
    (tmp_path / "elsewhere").mkdir()
    path = write_study(tmp_path / "elsewhere", name="mine")
    out = tmp_path / "results"
    assert main(["study", str(path), "--out", str(out), "--no-figures"]) == 0
    assert json.loads((out / "mine" / "run.json").read_text())["study"] == "mine"
    assert main(["study", str(tmp_path / "missing.toml"), "--out", str(out)]) == 2
    assert "missing.toml: no such file" in capsys.readouterr().err


def test_studies_and_results_anywhere(tmp_path: Path, monkeypatch) -> None:
    """--studies-dir / --results-dir for one command; $DQN_STUDIES_DIR / $DQN_RESULTS_DIR for
    a process (an installed package has no studies/ beside it)."""
    monkeypatch.setattr(studyfile, "STUDIES_DIR", studyfile.STUDIES_DIR)  # restored after
    write_study(tmp_path, name="mine")
    assert main(["--studies-dir", str(tmp_path), "--results-dir", str(tmp_path / "res"),
                 "study", "mine", "--no-figures"]) == 0
    assert (tmp_path / "res" / "mine" / "run.json").exists()
    env = {**os.environ, "DQN_STUDIES_DIR": str(tmp_path),
           "DQN_RESULTS_DIR": str(tmp_path / "env")}
    listed = subprocess.run([sys.executable, "-m", "dqn", "list"], env=env, text=True,
                            capture_output=True, check=True).stdout
    assert "mine" in listed and "no_target" not in listed
    code = "from dqn.base import paths; print(paths.RESULTS_DIR)"
    shown = subprocess.run([sys.executable, "-c", code], env=env, text=True,
                           capture_output=True, check=True).stdout.strip()
    assert shown == str(tmp_path / "env")
