"""Executors and seed chunks with the local executor: units, per-chunk resume, failure reports.

Everything here runs without Ray (and must keep doing so: `make test` never imports it); the
Ray executor's own tests are in tests/ray/ (`make test-ray`).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from study_fixtures import tiny_study_text

import dqn.core.train
from dqn.base.config import Config
from dqn.base.provenance import NUMERICS
from dqn.cli.main import main
from dqn.run import executors, runner, studyfile
from dqn.run.executors import LocalExecutor
from dqn.store import store
from dqn.store.units import Unit, seeds_label, split_seeds

REAL_TRAIN = dqn.core.train.train  # before any test patches it
TINY = tiny_study_text("A tiny study for executor tests.", 3)


def tiny(tmp_path: Path, extra: str = "") -> studyfile.StudyFile:
    path = tmp_path / "tiny.toml"
    path.write_text(extra + TINY)
    return studyfile.load(path)


def csvs(out: Path) -> dict[str, bytes]:
    return {t: (out / f"{t}.csv").read_bytes() for t in store.TABLES}


def finished(out: Path, variant: str, config) -> bool:
    """Whether the store records every seed (0-2) of `variant` as finished."""
    return store.finished_seeds(store.check(out), variant, config) == {0, 1, 2}


def record_calls(monkeypatch) -> list[tuple[str, list[int]]]:
    """Patch dqn.core.train.train to log (target, seeds) of every unit it trains."""
    calls = []

    def recording(config, seeds, progress=None):
        calls.append((config.target, list(seeds)))
        return REAL_TRAIN(config, seeds, progress)

    monkeypatch.setattr(dqn.core.train, "train", recording)
    return calls


def test_split_seeds_makes_consecutive_chunks() -> None:
    assert split_seeds([0, 1, 2, 3, 4], 2) == [(0, 1), (2, 3), (4,)]
    assert split_seeds([0, 1, 2], None) == [(0, 1, 2)]
    assert split_seeds([0, 1, 2], 10) == [(0, 1, 2)]
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="seed_chunk"):
            split_seeds([0, 1], bad)
    assert seeds_label((4, 5, 6)) == "4-6"
    assert seeds_label((7,)) == "7"
    assert seeds_label((1, 3)) == "1,3"


@pytest.mark.parametrize("value", ["0", "-2", '"2"', "true", "1.5"])
def test_bad_seed_chunk_in_a_study_file_names_file_key_and_value(tmp_path: Path,
                                                                 value: str) -> None:
    with pytest.raises(studyfile.StudyError) as err:
        tiny(tmp_path, f"seed_chunk = {value}\n")
    msg = str(err.value)
    assert "tiny.toml" in msg and "'seed_chunk'" in msg


def test_chunked_run_trains_and_records_each_chunk(tmp_path: Path, monkeypatch) -> None:
    s = tiny(tmp_path, "seed_chunk = 2\n")
    assert s.seed_chunk == 2
    calls = record_calls(monkeypatch)
    out = runner.run(s, out_dir=tmp_path / "r", figures=False, progress=False)
    assert calls == [("hard_steps", [0, 1]), ("hard_steps", [2]),
                     ("none", [0, 1]), ("none", [2])]
    run = json.loads((out / "run.json").read_text())
    for meta in run["variants"].values():
        assert meta["seeds"] == [0, 1, 2] and "seed_chunk" not in meta
        assert [ch["seeds"] for ch in meta["chunks"]] == [[0, 1], [2]]
        assert {"device", "host", "versions", "wall_time_s", "seed_steps_per_s",
                "diverged_seeds", "numerics", "git_commit"} <= set(meta["chunks"][0])
    # a chunk's rows are exactly what train() gives for that chunk's seeds alone
    alone = dqn.core.train.train(studyfile.load(s.path).configs()["no_target"], [2]).evals
    mine = pd.read_csv(out / "evals.csv")
    mine = mine[(mine["variant"] == "no_target") & (mine["seed"] == 2)]
    pd.testing.assert_frame_equal(mine.drop(columns=["study", "variant"]).reset_index(drop=True),
                                  pd.read_csv(io.StringIO(alone.to_csv(index=False))))


def test_default_run_is_one_chunk_per_variant(tmp_path: Path, monkeypatch) -> None:
    calls = record_calls(monkeypatch)
    out = runner.run(tiny(tmp_path), out_dir=tmp_path / "r", figures=False, progress=False)
    assert calls == [("hard_steps", [0, 1, 2]), ("none", [0, 1, 2])]
    for meta in json.loads((out / "run.json").read_text())["variants"].values():
        assert [ch["seeds"] for ch in meta["chunks"]] == [[0, 1, 2]]
        assert meta["wall_time_s"] == meta["chunks"][0]["wall_time_s"]


def test_chunking_changes_no_number(tmp_path: Path) -> None:
    """README "Seeds": a seed's records do not depend on the seeds it trains beside."""
    s, kw = tiny(tmp_path), {"figures": False, "progress": False, "variants": ["baseline"]}
    one = runner.run(s, out_dir=tmp_path / "one", **kw)
    per_seed = runner.run(s, out_dir=tmp_path / "per_seed", seed_chunk=1, **kw)
    pairs = runner.run(s, out_dir=tmp_path / "pairs", seed_chunk=2, **kw)
    assert csvs(per_seed) == csvs(one) == csvs(pairs)
    evals = pd.read_csv(one / "evals.csv")
    assert evals.groupby("seed")["return"].apply(tuple).nunique() == 3  # seeds still differ


def test_interrupted_chunked_run_resumes_only_the_missing_chunk(tmp_path: Path,
                                                                monkeypatch) -> None:
    s = tiny(tmp_path, "seed_chunk = 2\n")
    whole = runner.run(s, out_dir=tmp_path / "whole", figures=False, progress=False)

    real = dqn.core.train.train

    def crash_in_last_chunk(config, seeds, progress=None):
        if config.target == "none" and list(seeds) == [2]:
            raise RuntimeError("simulated crash in no_target's second chunk")
        return real(config, seeds, progress)

    monkeypatch.setattr(dqn.core.train, "train", crash_in_last_chunk)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.run(s, out_dir=tmp_path / "resumed", figures=False, progress=False)
    partial = tmp_path / "resumed" / "tiny"
    evals = pd.read_csv(partial / "evals.csv")
    assert set(zip(evals["variant"], evals["seed"], strict=True)) == {
        ("baseline", 0), ("baseline", 1), ("baseline", 2), ("no_target", 0), ("no_target", 1)}
    meta = json.loads((partial / "run.json").read_text())["variants"]["no_target"]
    assert [ch["seeds"] for ch in meta["chunks"]] == [[0, 1]]
    assert not list(partial.glob(".*.tmp"))
    config = s.configs()["no_target"]
    assert not finished(partial, "no_target", config)

    calls = record_calls(monkeypatch)
    runner.run(s, out_dir=tmp_path / "resumed", figures=False, progress=False)
    assert calls == [("none", [2])]
    assert finished(partial, "no_target", config)
    assert csvs(partial) == csvs(whole)
    calls.clear()
    runner.run(s, out_dir=tmp_path / "resumed", figures=False, progress=False)
    assert calls == []


def test_changed_seed_chunk_retrains_nothing(tmp_path: Path, monkeypatch) -> None:
    s, kw = tiny(tmp_path), {"figures": False, "progress": False, "variants": ["baseline"]}
    out = runner.run(s, out_dir=tmp_path / "r", **kw)
    before = csvs(out)
    calls = record_calls(monkeypatch)
    runner.run(s, out_dir=tmp_path / "r", seed_chunk=2, **kw)
    assert calls == [] and csvs(out) == before


def test_files_do_not_depend_on_the_order_units_finish(tmp_path: Path) -> None:
    """Remote units finish in any order; the driver's writes must give the same files."""

    class Reversed(LocalExecutor):
        def run(self, units, on_done, *, label, progress):
            return super().run(list(units)[::-1], on_done, label=label, progress=progress)

    s = tiny(tmp_path, "seed_chunk = 2\n")
    ordered = runner.run(s, out_dir=tmp_path / "a", figures=False, progress=False)
    backwards = runner.run(s, out_dir=tmp_path / "b", figures=False, progress=False,
                           executor=Reversed())
    assert csvs(ordered) == csvs(backwards)


def test_results_of_older_numerics_are_retrained(tmp_path: Path, monkeypatch,
                                                  capsys) -> None:
    """A run.json from before seed chunks (format 1), or from before the current numerics,
    still reads; its seeds count as unfinished, since the code now gives other numbers."""
    s = tiny(tmp_path)
    out = runner.run(s, out_dir=tmp_path / "r", figures=False, progress=False)
    before = csvs(out)
    run = json.loads((out / "run.json").read_text())
    for meta in run["variants"].values():  # the format written before seed chunks existed
        del meta["chunks"]
    (out / "run.json").write_text(json.dumps(run))
    capsys.readouterr()
    calls = record_calls(monkeypatch)
    runner.run(s, out_dir=tmp_path / "r", figures=False, progress=False)
    assert "seeds 0-2 were trained by an earlier version of the training code" in \
        capsys.readouterr().out
    assert calls == [("hard_steps", [0, 1, 2]), ("none", [0, 1, 2])]
    assert csvs(out) == before  # the same code retrained them: the same rows
    assert all(ch["numerics"] == NUMERICS for meta in json.loads(
        (out / "run.json").read_text())["variants"].values() for ch in meta["chunks"])


class _FailingExecutor(LocalExecutor):
    """Trains every unit locally except `bad`, which it reports as failed for good."""

    name = "failing"

    def __init__(self, bad: str) -> None:
        self.bad = bad

    def run(self, units, on_done, *, label, progress):
        ok = [u for u in units if u.name != self.bad]
        super().run(ok, on_done, label=label, progress=progress)
        return [executors.Failure(u, "RuntimeError: boom") for u in units if u.name == self.bad]


def test_failed_units_are_named_and_the_rest_is_written(tmp_path: Path, monkeypatch,
                                                        capsys) -> None:
    tiny(tmp_path, "seed_chunk = 2\n")
    monkeypatch.setattr(studyfile, "STUDIES_DIR", tmp_path)
    monkeypatch.setattr(runner, "make_executor",
                        lambda *a, **k: _FailingExecutor("no_target[seeds 0-1]"))
    code = main(["study", "tiny", "--out", str(tmp_path / "r"), "--no-figures"])
    assert code == 1
    err = capsys.readouterr().err
    assert "1 unit(s) failed" in err and "no_target[seeds 0-1]: RuntimeError: boom" in err
    evals = pd.read_csv(tmp_path / "r" / "tiny" / "evals.csv")
    assert set(zip(evals["variant"], evals["seed"], strict=True)) == {
        ("baseline", 0), ("baseline", 1), ("baseline", 2), ("no_target", 2)}
    # the re-run trains just the failed unit
    calls = record_calls(monkeypatch)
    monkeypatch.setattr(runner, "make_executor", lambda *a, **k: LocalExecutor())
    assert main(["study", "tiny", "--out", str(tmp_path / "r"), "--no-figures"]) == 0
    assert calls == [("none", [0, 1])]


@pytest.mark.parametrize("args, needle", [
    (["--seed-chunk", "0"], "--seed-chunk: 0"),
    (["--address", "127.0.0.2:6379"], "--address '127.0.0.2:6379' needs --executor ray"),
    (["--executor", "ray", "--max-retries", "-1"], "max_retries: -1"),
    (["--executor", "ray", "--gpus-per-unit", "2"], "gpus_per_unit: 2.0"),
])
def test_bad_executor_options_are_rejected_before_training(tmp_path: Path, args, needle,
                                                           capsys, monkeypatch) -> None:
    monkeypatch.setattr(dqn.core.train, "train", lambda *a, **k: pytest.fail("trained"))
    assert main(["study", "no_target", "--out", str(tmp_path / "r"), *args]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_missing_ray_is_a_clear_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setattr(dqn.core.train, "train", lambda *a, **k: pytest.fail("trained"))
    assert main(["study", "no_target", "--executor", "ray", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "needs Ray" in err and "pip install -e '.[ray]'" in err
    assert not (tmp_path / "r").exists()


def test_local_run_never_imports_ray(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(TINY)
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from dqn.run import studyfile
        from dqn.cli.main import main
        studyfile.STUDIES_DIR = Path({str(tmp_path)!r})
        code = main(["study", "tiny", "--seed-chunk", "2", "--variants", "baseline",
                     "--no-figures", "--out", {str(tmp_path / "r")!r}])
        assert code == 0, code
        print("RAY-IMPORTED" if "ray" in sys.modules else "RAY-NOT-IMPORTED")
    """)
    # cwd is tmp_path, so no tests/ray/ directory can shadow the name `ray`
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "RAY-NOT-IMPORTED"
    assert (tmp_path / "r" / "tiny" / "evals.csv").exists()


def test_the_bar_shows_average_seed_steps_per_second() -> None:
    assert executors.seed_steps_per_s(2_000, 3, start=10.0, now=11.0) == 6_000
    assert executors.seed_steps_per_s(0, 3, start=10.0, now=10.0) == 0.0


def test_study_bar_counts_variants_and_units_in_training_order() -> None:
    units = [Unit("b", Config(), (0, 1), 0, 2), Unit("b", Config(), (2,), 1, 2),
             Unit("a", Config(), (0, 1, 2), 0, 1)]
    assert executors.study_position(units, 0, 0) == "variant 1/2 b, units 0/3 done"
    assert executors.study_position(units, 2, 2) == "variant 2/2 a, units 2/3 done"
    assert executors.study_position(units, 2, 3) == "variant 2/2 a, units 3/3 done"


def test_study_bar_ends_at_every_units_seed_steps(monkeypatch, capsys) -> None:
    """Two units of 2 and 3 seeds x 100 steps: the study bar ends at 500 seed-steps and says
    every unit is done, whatever steps the units' reports stopped at."""
    def fake_train(config, seeds, progress=None):
        for step in (40, 80):  # the last report falls short of total_steps on purpose
            progress(step, {"return": 1.0})
        return list(seeds)

    monkeypatch.setattr(dqn.core.train, "train", fake_train)
    config = Config(total_steps=100, learning_starts=10)
    units = [Unit("a", config, (0, 1), 0, 1), Unit("b", config, (0, 1, 2), 0, 1)]
    done = []
    LocalExecutor().run(units, lambda u, r: done.append(r.records), label="s", progress=True)
    assert done == [[0, 1], [0, 1, 2]]
    err = capsys.readouterr().err
    assert "s (all units)" in err and "variant 2/2 b, units 2/2 done" in err
    assert "500/500" in err
