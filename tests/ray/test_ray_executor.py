"""The Ray executor on a real two-node Ray cluster on loopback, started by these tests.

Run with `make test-ray` (it installs the `ray` extra first). Kept out of `make test` by the
`ray` marker, and Ray is imported only inside the cluster fixture, so collecting this file
never imports it.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from study_fixtures import tiny_study_text

import dqn.core.train
from dqn.cli.main import main
from dqn.run import executors, ray_executor, runner, studyfile
from dqn.store import store

pytestmark = pytest.mark.ray

# Loopback, but not 127.0.0.1: Ray rewrites 127.0.0.1/localhost in an address to this
# machine's network address, where a node bound to 127.0.0.1 does not answer.
LOOPBACK = "127.0.0.2"
TINY = tiny_study_text("A tiny study for the Ray executor tests.", 4, "seed_chunk = 2\n")
UNITS = {"baseline[seeds 0-1]", "baseline[seeds 2-3]", "no_target[seeds 0-1]",
         "no_target[seeds 2-3]"}


@pytest.fixture(scope="module")
def cluster():
    """A head and a worker node, one CPU each, no dashboard, every address on loopback."""
    pytest.importorskip("ray")
    # importorskip("ray") alone is fooled when Ray is missing: with tests/ on sys.path,
    # this very directory imports as an empty namespace package called `ray`
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    import ray

    c = cluster_utils.Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": LOOPBACK, "include_dashboard": False})
    c.add_node(num_cpus=1, node_ip_address=LOOPBACK)
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="WARNING")
    # the train_fn wrappers below travel to the workers by value: workers cannot import
    # this test module
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    assert all(n["NodeManagerAddress"] == LOOPBACK for n in ray.nodes())
    yield c
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def study_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("studies") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def local_csvs(study_file, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The local executor's results for the tiny study: what Ray must reproduce."""
    out = runner.run(studyfile.load(study_file), out_dir=tmp_path_factory.mktemp("local"),
                     figures=False, progress=False)
    return read_csvs(out)


def read_csvs(out: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_csv(out / f"{t}.csv") for t in store.TABLES}


def rows_of(frames: dict[str, pd.DataFrame], keep) -> dict[str, pd.DataFrame]:
    return {t: df[keep(df)].reset_index(drop=True) for t, df in frames.items()}


# train_fn wrappers, run on the workers ----------------------------------------------------
def train_and_note_node(notes: str, config, seeds, progress=None):
    """Train normally, leaving a file named after the Ray node that ran the unit."""
    import ray

    Path(notes, ray.get_runtime_context().get_node_id()).touch()
    return dqn.core.train.train(config, seeds)


def die_once(marker: str, config, seeds, progress=None):
    """no_target[seeds 2-3] kills its worker process on its first attempt."""
    if config.target == "none" and list(seeds) == [2, 3] and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)  # no exception, no cleanup: the worker just dies
    return dqn.core.train.train(config, seeds)


def always_fail(attempts: str, config, seeds, progress=None):
    """no_target[seeds 0-1] raises on every attempt, each attempt leaving a file."""
    if config.target == "none" and list(seeds) == [0, 1]:
        Path(attempts, f"attempt-{time.time_ns()}-{os.getpid()}").touch()
        raise RuntimeError("this unit always fails")
    return dqn.core.train.train(config, seeds)


def one_fast_rest_hang(config, seeds, progress=None):
    """baseline[seeds 0-1] trains; every other unit hangs until cancelled."""
    if config.target != "none" and list(seeds) == [0, 1]:
        return dqn.core.train.train(config, seeds)
    time.sleep(3600)
    raise AssertionError("should have been cancelled")


# tests ------------------------------------------------------------------------------------
def test_ray_executor_gives_the_local_executors_csvs(cluster, study_file, local_csvs,
                                                     tmp_path, monkeypatch, capsys) -> None:
    notes = tmp_path / "nodes"
    notes.mkdir()
    real_make = runner.make_executor

    def make(*args, **kwargs):
        ex = real_make(*args, **kwargs)
        ex.train_fn = functools.partial(train_and_note_node, str(notes))
        return ex

    monkeypatch.setattr(studyfile, "STUDIES_DIR", study_file.parent)
    monkeypatch.setattr(runner, "make_executor", make)
    code = main(["study", "tiny", "--executor", "ray", "--address", cluster.address,
                 "--out", str(tmp_path / "r"), "--no-figures"])
    assert code == 0, capsys.readouterr().err
    got = read_csvs(tmp_path / "r" / "tiny")
    for table in store.TABLES:
        pd.testing.assert_frame_equal(got[table], local_csvs[table])
    # one CPU per node and four units submitted at once: both nodes train
    assert len(list(notes.iterdir())) == 2
    run = store.read_run(tmp_path / "r" / "tiny")
    assert [[c["seeds"] for c in m["chunks"]] for m in run["variants"].values()] == [
        [[0, 1], [2, 3]], [[0, 1], [2, 3]]]

    # resume: everything is finished, nothing is submitted
    monkeypatch.setattr(runner, "make_executor", real_make)
    monkeypatch.setattr(ray_executor.RayExecutor, "_run",
                        lambda *a, **k: pytest.fail("submitted units"))
    assert main(["study", "tiny", "--executor", "ray", "--address", cluster.address,
                 "--out", str(tmp_path / "r"), "--no-figures"]) == 0


def test_a_killed_worker_is_retried_and_the_study_completes(cluster, study_file, local_csvs,
                                                            tmp_path) -> None:
    marker = tmp_path / "died-once"
    ex = ray_executor.RayExecutor(max_retries=1,
                                  train_fn=functools.partial(die_once, str(marker)))
    out = runner.run(studyfile.load(study_file), out_dir=tmp_path / "r", executor=ex,
                     figures=False, progress=False)
    assert marker.exists()  # the first attempt really died
    got = read_csvs(out)
    for table in store.TABLES:
        pd.testing.assert_frame_equal(got[table], local_csvs[table])


def test_a_unit_that_always_fails_is_named_and_the_rest_is_written(
        cluster, study_file, local_csvs, tmp_path, monkeypatch, capsys) -> None:
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    ex = ray_executor.RayExecutor(max_retries=2,
                                  train_fn=functools.partial(always_fail, str(attempts)))
    monkeypatch.setattr(studyfile, "STUDIES_DIR", study_file.parent)
    monkeypatch.setattr(runner, "make_executor", lambda *a, **k: ex)
    code = main(["study", "tiny", "--executor", "ray", "--out", str(tmp_path / "r")])
    assert code == 1
    err = capsys.readouterr().err
    assert "1 unit(s) failed" in err
    assert "no_target[seeds 0-1]: RuntimeError: this unit always fails" in err
    assert len(list(attempts.iterdir())) == 3  # the first attempt and two retries

    got = read_csvs(tmp_path / "r" / "tiny")
    def not_failed(df):
        return ~((df["variant"] == "no_target") & df["seed"].isin([0, 1]))
    expected = rows_of(local_csvs, not_failed)
    for table in store.TABLES:
        pd.testing.assert_frame_equal(got[table], expected[table])
    run = store.read_run(tmp_path / "r" / "tiny")
    assert [c["seeds"] for c in run["variants"]["no_target"]["chunks"]] == [[2, 3]]


def test_ctrl_c_cancels_outstanding_units_and_keeps_finished_ones(cluster, study_file,
                                                                  local_csvs, tmp_path,
                                                                  monkeypatch) -> None:
    import ray

    real_write = runner.write_unit

    def write_then_ctrl_c(*args, **kwargs):
        real_write(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C on the driver

    monkeypatch.setattr(runner, "write_unit", write_then_ctrl_c)
    ex = ray_executor.RayExecutor(max_retries=0, train_fn=one_fast_rest_hang)
    with pytest.raises(KeyboardInterrupt):
        runner.run(studyfile.load(study_file), out_dir=tmp_path / "r", executor=ex,
                   figures=False, progress=False)
    got = read_csvs(tmp_path / "r" / "tiny")
    expected = rows_of(local_csvs,
                       lambda df: (df["variant"] == "baseline") & df["seed"].isin([0, 1]))
    for table in store.TABLES:
        pd.testing.assert_frame_equal(got[table], expected[table])
    # the hanging units were cancelled: both CPUs come back (they would hang for an hour)
    deadline = time.monotonic() + 120
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0) == 2


def test_an_address_where_no_cluster_answers_is_a_clear_error() -> None:
    pytest.importorskip("ray.cluster_utils")
    with socket.socket() as s:  # a port nothing listens on
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    with pytest.raises(executors.ExecutorError, match=f"no Ray cluster answers at "
                                                      f"{LOOPBACK}:{port}"):
        ray_executor._check_reachable(f"{LOOPBACK}:{port}", timeout_s=2)
    with pytest.raises(executors.ExecutorError, match="must be HOST:PORT"):
        ray_executor._check_reachable("127.0.0.2")


def test_a_head_only_on_127_0_0_1_gets_the_rewrite_explained() -> None:
    pytest.importorskip("ray.cluster_utils")
    from ray._private.services import canonicalize_bootstrap_address

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        address = f"127.0.0.1:{s.getsockname()[1]}"
        if canonicalize_bootstrap_address(address) == address:
            pytest.skip("Ray dials 127.0.0.1 as is on this machine (no network address)")
        with pytest.raises(executors.ExecutorError, match="Ray rewrites 127.0.0.1"):
            ray_executor._check_reachable(address, timeout_s=2)


def test_chunk_size_changes_no_number_on_ray(cluster, tmp_path) -> None:
    """Seeds are independent (README "Seeds"): 20 seeds in units of 1, 5 or 20 seeds, on
    either node, give byte-identical CSVs, equal to the local executor's."""
    path = tmp_path / "twenty.toml"
    path.write_text(tiny_study_text("Twenty seeds on Ray.", 20))
    s = studyfile.load(path)
    local = runner.run(s, out_dir=tmp_path / "local", figures=False, progress=False)
    expected = {t: (local / f"{t}.csv").read_bytes() for t in store.TABLES}
    for chunk in (1, 5, 20):
        out = runner.run(s, out_dir=tmp_path / f"ray-{chunk}", seed_chunk=chunk,
                         executor=ray_executor.RayExecutor(), figures=False, progress=False)
        assert {t: (out / f"{t}.csv").read_bytes() for t in store.TABLES} == expected, chunk
        chunks = store.read_run(out)["variants"]["baseline"]["chunks"]
        assert len(chunks) == 20 // chunk


ATLAS = """about = "a tiny atlas on Ray"
seeds = 2
recipes = ["tuned_default"]
[envs."CartPole-v1"]
total_steps = 300
learning_starts = 100
eval_every = 150
buffer_size = 300
[ablations.no_target]
label = "no target network"
set = { target = "none" }
"""


def test_the_atlas_runs_on_ray_as_it_does_here(cluster, tmp_path) -> None:
    """`atlas --executor ray`: the column trains on the cluster, with the local CSVs."""
    plan = tmp_path / "atlas.toml"
    plan.write_text(ATLAS)
    outs = {}
    for how in ("local", "ray"):
        outs[how] = tmp_path / how
        extra = ["--executor", "ray", "--address", cluster.address] if how == "ray" else []
        assert main(["atlas", "--atlas-file", str(plan), "--out", str(outs[how]),
                     "--device", "cpu", *extra]) == 0
    column = "tuned_default.CartPole-v1"
    local, ray_ = read_csvs(outs["local"] / column), read_csvs(outs["ray"] / column)
    for t in store.TABLES:
        pd.testing.assert_frame_equal(local[t], ray_[t])
    assert (outs["ray"] / "atlas.csv").read_bytes() == (outs["local"] / "atlas.csv").read_bytes()
