"""Faults while results are written: a crash at every write boundary, a killed process, and two
processes writing one results folder. Whatever happens, a re-run ends with the results of an
uninterrupted run, and no unit whose rows are not its own is ever taken as finished."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from study_fixtures import csv_bytes, memo_train, records_of, tiny_study_text

from dqn.run import runner, studyfile
from dqn.store import store
from dqn.store.lock import locked
from dqn.store.tables import unit_rows

TINY = tiny_study_text("Faults.", 3, top="seed_chunk = 2\n")
FIRST = {"figures": False, "progress": False}  # the finished run: 300 steps
SECOND = {**FIRST, "steps": 200}  # the run interrupted: other settings, replaces every unit
REAL_REPLACE, REAL_FSYNC = os.replace, os.fsync


class Crash(BaseException):
    """A simulated crash: a BaseException, so no `except Exception` can swallow it."""


def study(tmp_path: Path) -> studyfile.StudyFile:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return studyfile.load(path)


def crash_at(monkeypatch, name: str, k: int) -> dict[str, int]:
    """Make the k-th call of os.<name> (replace: the rename that publishes a file; fsync:
    the flush before it) raise Crash; returns the call counter."""
    real = {"replace": REAL_REPLACE, "fsync": REAL_FSYNC}[name]
    calls = {"n": 0}

    def faulty(*args):
        calls["n"] += 1
        if calls["n"] == k:
            raise Crash(f"crash at {name} call {k}")
        return real(*args)

    monkeypatch.setattr(os, name, faulty)
    return calls


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, Path]:
    """Uninterrupted results: the first run alone, and the second run over the first."""
    mp = pytest.MonkeyPatch()
    memo_train(mp)
    root = tmp_path_factory.mktemp("references")
    s = study(root)
    first = runner.run(s, out_dir=root / "first", **FIRST)
    shutil.copytree(first, root / "second" / "tiny")
    second = runner.run(s, out_dir=root / "second", **SECOND)
    mp.undo()
    return {"first": first, "second": second}


def boundaries(tmp_path: Path, references, monkeypatch, name: str) -> int:
    """How many os.<name> calls the second run makes when nothing goes wrong."""
    memo_train(monkeypatch)
    shutil.copytree(references["first"], tmp_path / "count" / "tiny")
    calls = crash_at(monkeypatch, name, 0)
    runner.run(study(tmp_path), out_dir=tmp_path / "count", **SECOND)
    monkeypatch.setattr(os, name, {"replace": REAL_REPLACE, "fsync": REAL_FSYNC}[name])
    return calls["n"]


def assert_finished_units_hold_their_own_rows(out: Path, references) -> None:
    """Never stale data marked finished: every unit the store would skip as finished holds
    exactly the rows an uninterrupted run with its config wrote (first or second run)."""
    state = store.check(out)
    by_hash = {}
    for ref in references.values():
        ref_state = store.check(ref)
        for meta in ref_state.run["variants"].values():
            by_hash[meta["config_hash"]] = ref_state
    for v, chunks in state.valid.items():
        ref_state = by_hash[state.run["variants"][v]["config_hash"]]
        for ch in chunks:
            for t in store.TABLES:
                mine = state.tables[t][unit_rows(state.tables[t], v, ch["seeds"])]
                ref = ref_state.tables[t][unit_rows(ref_state.tables[t], v, ch["seeds"])]
                assert mine.reset_index(drop=True).equals(ref.reset_index(drop=True))


def assert_same_results(out: Path, reference: Path) -> None:
    assert csv_bytes(out) == csv_bytes(reference)
    assert records_of(out) == records_of(reference)
    state = store.check(out)
    assert not state.problems and not state.unrecorded
    assert not list((out / store.PENDING).glob("*")) and not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("name", ["replace", "fsync"])
def test_a_crash_at_every_write_boundary_is_repaired_by_a_rerun(tmp_path, references,
                                                                 monkeypatch, name) -> None:
    n = boundaries(tmp_path, references, monkeypatch, name)
    # per unit: the journal, three CSVs, run.json and the final weights, written last (4
    # units: 2 variants x 2 seed chunks); a crash at the weights loses only them
    assert n == 4 * 6
    s = study(tmp_path)
    for k in range(1, n + 1):
        for rerun, reference in (("second", SECOND), ("first", FIRST)):
            out_dir = tmp_path / f"{name}{k}-{rerun}"
            shutil.copytree(references["first"], out_dir / "tiny")
            crash_at(monkeypatch, name, k)
            with pytest.raises(Crash):
                runner.run(s, out_dir=out_dir, **SECOND)
            monkeypatch.setattr(os, name, {"replace": REAL_REPLACE, "fsync": REAL_FSYNC}[name])
            assert_finished_units_hold_their_own_rows(out_dir / "tiny", references)
            # re-running either command ends exactly where an uninterrupted run ends
            runner.run(s, out_dir=out_dir, **reference)
            assert_same_results(out_dir / "tiny", references[rerun])


KILLED = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from dqn.run import runner, studyfile
    k, calls, real = int(sys.argv[1]), [0], os.replace
    def replace(*args):
        calls[0] += 1
        if calls[0] == k:
            os._exit(9)  # killed: no finally block runs, temporary files stay, lock is held
        return real(*args)
    os.replace = replace
    runner.run(studyfile.load(Path(sys.argv[2])), out_dir=Path(sys.argv[3]), figures=False,
               progress=False, steps=200)
""")


@pytest.mark.parametrize("k", [pytest.param(k, marks=() if k in (1, 3, 5, 12) else
                                             pytest.mark.slow) for k in range(1, 21)])
def test_a_killed_writer_leaves_nothing_a_rerun_cannot_repair(tmp_path, references,
                                                              monkeypatch, k) -> None:
    out_dir = tmp_path / "r"
    shutil.copytree(references["first"], out_dir / "tiny")
    s = study(tmp_path)
    done = subprocess.run([sys.executable, "-c", KILLED, str(k), str(s.path), str(out_dir)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 9, done.stderr[-2000:]  # every k of the 20 kills (make test-slow)
    memo_train(monkeypatch)
    runner.run(s, out_dir=out_dir, **SECOND)  # the lock died with its holder: no waiting
    assert_same_results(out_dir / "tiny", references["second"])


TWO_WRITERS = textwrap.dedent("""
    import sys
    from pathlib import Path
    from dqn.run import studyfile
    from dqn.cli.main import main
    studyfile.STUDIES_DIR = Path(sys.argv[1])
    sys.exit(main(["study", "tiny", "--variants", sys.argv[2], "--seed-chunk", "1",
                   "--out", sys.argv[3]]))
""")


def test_two_processes_writing_one_folder_both_finish(tmp_path, references) -> None:
    s = study(tmp_path)
    out_dir = tmp_path / "r"
    procs = [subprocess.Popen([sys.executable, "-c", TWO_WRITERS, str(tmp_path), variant,
                               str(out_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for variant in ("baseline", "no_target")]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "Traceback" not in err + out
    result = out_dir / "tiny"
    state = store.check(result)
    assert not state.problems and not state.unrecorded
    for table in store.TABLES:
        df = pd.read_csv(result / f"{table}.csv")
        assert not df.duplicated(["variant", "seed", "env_step"]).any()
        assert set(zip(df["variant"], df["seed"], strict=True)) == {
            (v, seed) for v in ("baseline", "no_target") for seed in (0, 1, 2)}
    # the same rows as one process training both variants (seed chunks of one seed)
    alone = runner.run(s, out_dir=tmp_path / "alone", seed_chunk=1, **FIRST)
    assert csv_bytes(result) == csv_bytes(alone)


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dqn.store.lock import locked
    with locked(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(3)
        (Path(sys.argv[1]) / "holder-done").touch()  # the last thing done under the lock
""")


def test_a_second_process_waits_saying_once_who_holds_the_folder(tmp_path, capsys) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with locked(tmp_path):
        # got the lock only once the holder let go (its exit may lag its release)
        assert (tmp_path / "holder-done").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"waiting for {tmp_path}: locked by pid {holder.pid} on" in err
    holder.wait(timeout=30)
