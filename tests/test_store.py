"""The results store: row records in run.json, damaged files found and retrained, corrupt
run.json, variant names CSV tools read as missing, the output folder, the device, memory and
seed counts checked before training, errors blamed on their real source, and provenance."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from study_fixtures import csv_bytes, memo_train, records_of, snapshot, tiny_study_text

import dqn.core.train
from dqn.cli.main import main
from dqn.figures.plots import make_figures
from dqn.report import markdown as report
from dqn.run import plan, runner, studyfile
from dqn.store import store
from dqn.store.journal import migrate
from dqn.store.tables import read_typed

TINY = tiny_study_text("Store.", 3, top="seed_chunk = 2\n")
QUIET = {"figures": False, "progress": False}


def tiny(tmp_path: Path, text: str = TINY) -> studyfile.StudyFile:
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return studyfile.load(path)


@pytest.fixture
def finished(tmp_path, monkeypatch):
    """A finished tiny study (3 seeds in chunks of 2) and the log of units trained after."""
    memo_train(monkeypatch)
    s = tiny(tmp_path)
    out = runner.run(s, out_dir=tmp_path / "r", **QUIET)
    return s, out, memo_train(monkeypatch)


def test_run_json_records_each_units_rows(finished) -> None:
    s, out, _ = finished
    run = json.loads((out / "run.json").read_text())
    assert run["format"] == store.FORMAT
    state = store.check(out)
    assert not state.problems and not state.unrecorded
    evals = pd.read_csv(out / "evals.csv")
    for v, meta in run["variants"].items():
        assert [ch["seeds"] for ch in meta["chunks"]] == [[0, 1], [2]]
        for ch in meta["chunks"]:
            n = evals["variant"].eq(v) & evals["seed"].isin(ch["seeds"])
            assert ch["rows"]["evals"] == n.sum() == 2 * len(ch["seeds"])  # evals at 150, 300
            assert len(ch["sha256"]["episodes"]) == 64


def damage_one_value(out: Path) -> None:
    text = (out / "evals.csv").read_text().splitlines()
    cells = text[-1].split(",")  # no_target, seed 2, the last evaluation
    cells[4] = str(float(cells[4]) + 1)
    (out / "evals.csv").write_text("\n".join(text[:-1] + [",".join(cells)]) + "\n")


def truncate_mid_row(out: Path) -> None:
    data = (out / "episodes.csv").read_bytes()
    (out / "episodes.csv").write_bytes(data[:-7])  # half of the last row, no newline


def half_written_last_row(out: Path) -> None:
    with open(out / "diagnostics.csv", "a") as f:
        f.write("tiny,no_target,2,300,0.5,")  # a row a crashed writer began


@pytest.mark.parametrize("damage, table", [(damage_one_value, "evals"),
                                           (truncate_mid_row, "episodes"),
                                           (half_written_last_row, "diagnostics")])
def test_damaged_rows_are_named_and_only_their_unit_retrained(finished, capsys, damage,
                                                              table) -> None:
    s, out, calls = finished
    clean = csv_bytes(out), records_of(out)
    damage(out)
    state = store.check(out)
    named = [str(p) for p in state.problems] + [f"{t}: {n}" for t, n in state.unrecorded.items()]
    assert named and all(table in n for n in named), named
    with pytest.raises(store.DamagedResults, match=f"{table}.csv"):
        make_figures(out)
    runner.run(s, out_dir=out.parent, **QUIET)
    assert calls == [("none", [2])]
    assert f"{out / table}.csv: no_target[seeds 2]" in capsys.readouterr().out
    assert (csv_bytes(out), records_of(out)) == clean


@pytest.mark.parametrize("text", ["{not json", "{}", "[]", '{"variants": []}'])
def test_corrupt_run_json_stops_every_command_with_one_line(finished, capsys, monkeypatch,
                                                            text) -> None:
    s, out, calls = finished
    (out / "run.json").write_text(text)
    before = snapshot(out.parent)
    monkeypatch.setattr(studyfile, "STUDIES_DIR", s.path.parent)
    for argv in (["study", "tiny"], ["figures", "tiny"], ["report"]):
        assert main([*argv, "--out", str(out.parent)]) == 2
        err = capsys.readouterr().err
        assert f"{out / 'run.json'}: not" in err and "Traceback" not in err
    assert calls == [] and snapshot(out.parent) == before


def test_figures_and_report_never_write_from_damaged_results(finished, capsys) -> None:
    _, out, _ = finished
    damage_one_value(out)
    assert main(["figures", "--out", str(out.parent)]) == 2
    assert main(["report", "--out", str(out.parent)]) == 2
    err = capsys.readouterr().err
    assert "evals.csv: no_target[seeds 2]: rows differ" in err
    assert not (out / "summary.csv").exists() and not (out.parent / "REPORT.md").exists()


@pytest.mark.parametrize("name", ["NA", "", "null", "None", "nan", "N/A", "NaN", "NULL"])
def test_variant_names_csv_tools_read_as_missing_are_refused(tmp_path, name) -> None:
    text = TINY.replace("[variants.no_target]", f'[variants."{name}"]')
    with pytest.raises(studyfile.StudyError) as err:
        tiny(tmp_path, text)
    assert "tiny.toml" in str(err.value) and f"variant name {name!r}" in str(err.value)


def test_variant_names_are_read_back_as_written(tmp_path) -> None:
    path = tmp_path / "evals.csv"
    path.write_text("study,variant,seed,env_step,return,diverged\n"
                    "s,NA,0,10,1.5,False\ns,None,0,10,,False\ns,nan,1,10,2.0,True\n")
    df = read_typed(path)
    assert list(df["variant"]) == ["NA", "None", "nan"]
    assert df["return"].isna().tolist() == [False, True, False]
    assert df["seed"].dtype.kind == "i" and df["diverged"].dtype == bool


def refused_before_training(monkeypatch, capsys, argv: list[str], needle: str,
                            results: Path) -> None:
    """`python -m dqn study ...` exits 2 with one line naming the problem, before any
    progress bar, training or file under `results`."""
    before = snapshot(results) if results.exists() else None
    monkeypatch.setattr(dqn.core.train, "train", lambda *a, **k: pytest.fail("trained"))
    assert main(["study", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err, err
    assert err.count("\n") == 1 and "step/s" not in err and "Traceback" not in err
    assert (snapshot(results) if results.exists() else None) == before


def test_output_that_is_a_file_or_unwritable_is_refused(tmp_path, monkeypatch,
                                                        capsys) -> None:
    (tmp_path / "file").write_text("not a folder\n")
    refused_before_training(monkeypatch, capsys, ["no_target", "--out", str(tmp_path / "file")],
                            "is a file, not a folder", tmp_path)
    # /proc refuses new files even to root, where a read-only mode would not
    refused_before_training(monkeypatch, capsys, ["no_target", "--out", "/proc/dqn-results"],
                            "cannot write in /proc", tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_is_refused(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "ro").mkdir(mode=0o555)
    refused_before_training(monkeypatch, capsys, ["no_target", "--out", str(tmp_path / "ro")],
                            "cannot write in", tmp_path)


@pytest.mark.parametrize("device, needle", [
    ("cudafoo", "key 'device': 'cudafoo' must be auto, cpu, cuda or cuda:N"),
    ("cuda:abc", "key 'device': 'cuda:abc' must be auto, cpu, cuda or cuda:N"),
    pytest.param("cuda", "CUDA is not available on this machine", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="this machine has CUDA")),
    ("cuda:7", "CUDA is not available" if not torch.cuda.is_available()
     else "there is no CUDA device 7"),
])
def test_missing_or_malformed_device_is_refused(tmp_path, monkeypatch, capsys, device,
                                                needle) -> None:
    refused_before_training(monkeypatch, capsys, ["no_target", "--device", device, "--out",
                                                  str(tmp_path / "r")], needle, tmp_path)
    assert not (tmp_path / "r").exists()


def test_errors_blame_their_real_source(tmp_path, monkeypatch, capsys) -> None:
    bad_base = TINY.replace("[base]\n", "[base]\ngamma = \"high\"\n", 1)
    with pytest.raises(studyfile.StudyError, match=r"^tiny.toml \[base\]: key 'gamma'"):
        tiny(tmp_path, bad_base)
    bad_variant = TINY.replace('target = "none"', 'target = "none"\ngamma = 2.0')
    with pytest.raises(studyfile.StudyError,
                       match=r"^tiny.toml \[variants.no_target\]: key 'gamma'"):
        tiny(tmp_path, bad_variant)
    s = tiny(tmp_path)
    for options, needle in (({"steps": 50}, "command line"), ({"seeds": 0}, "--seeds"),
                            ({"seeds": 10**9}, "more than 100,000 seeds"),
                            ({"seed_chunk": -1}, "--seed-chunk"),
                            ({"variants": ["nope"]}, "command line: --variants")):
        with pytest.raises(studyfile.StudyError) as err:
            plan.make_plan(s, out_dir=tmp_path / "r", **options)
        assert str(err.value).startswith(needle.split(":")[0]) or needle in str(err.value)
        assert needle in str(err.value) and "[variants." not in str(err.value).split(":")[0]


def test_a_unit_too_big_for_the_memory_is_refused(tmp_path, monkeypatch) -> None:
    s = tiny(tmp_path)
    monkeypatch.setattr(plan, "available_bytes", lambda device: 700 * 2**20)
    with pytest.raises(studyfile.StudyError) as err:
        plan.make_plan(s, out_dir=tmp_path / "r", seeds=20_000, seed_chunk=20_000)
    assert "a unit of 20,000 seeds needs about" in str(err.value)
    assert "--seed-chunk" in str(err.value) and not (tmp_path / "r").exists()


def test_format_1_results_migrate_without_retraining(finished) -> None:
    s, out, calls = finished
    clean = csv_bytes(out), records_of(out)
    run = json.loads((out / "run.json").read_text())
    del run["format"]
    for meta in run["variants"].values():
        for ch in meta["chunks"]:
            del ch["rows"], ch["sha256"]
    (out / "run.json").write_text(json.dumps(run))
    runner.run(s, out_dir=out.parent, **QUIET)  # trusted as before: all rows are there
    assert calls == []
    assert migrate(out) == []
    assert (csv_bytes(out), records_of(out)) == clean


def test_leftover_temporary_files_are_cleared_by_the_next_write(finished) -> None:
    s, out, _ = finished
    stale = out / ".evals.csv.123.abcd.tmp"
    stale.write_text("half a file")
    runner.run(s, out_dir=out.parent, force=True, variants=["baseline"], **QUIET)
    assert not stale.exists()


def test_study_file_outside_the_repository_is_marked(finished) -> None:
    _, out, _ = finished
    run = json.loads((out / "run.json").read_text())
    marks = {ch["study_file"]["git"] for m in run["variants"].values() for ch in m["chunks"]}
    assert marks == {"outside the repository"}
    text = report.write_report(out.parent).read_text()
    assert "**Not reproducible from the repository as it stands:** study file" in text
    assert "(outside the repository)" in text
