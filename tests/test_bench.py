"""`make bench` in a tiny configuration writes a well-formed table and figure (no timing), and
the roofline counts matmul FLOPs by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dqn.base import paths
from dqn.base.config import Config
from dqn.run import bench_out
from dqn.run.bench import main, matmul_shapes


def test_tiny_bench_writes_table_and_figure(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    (out).mkdir()
    # a row from another device must survive a CPU run (the figure draws every device)
    pd.DataFrame([{"device": "cuda", "device_name": "x", "threads": 0, "S": 1,
                   "seed_steps_per_s": 1.0}]).to_csv(out / "bench.csv", index=False)
    assert main("cpu", out, tiny=True) == 0
    df = pd.read_csv(out / "bench.csv")
    cpu = df[(df["device"] == "cpu") & (df["kind"] == "batched")]
    assert list(cpu["S"]) == [1, 4]
    assert (df["kind"] == "plain loop").sum() == 1 and (df["device"] == "cuda").sum() == 1
    for col in ("seed_steps_per_s", "steady_seed_steps_per_s", "vs_plain", "roofline_fraction",
                "flops_per_seed_step", "rss_mb", "commit", "torch"):
        assert cpu[col].notna().all(), col
    np.testing.assert_allclose(cpu["seed_steps_per_s"], cpu["S"] * 1_000 / cpu["seconds"])
    plain = df.loc[df["kind"] == "plain loop", "seed_steps_per_s"].iloc[0]
    np.testing.assert_allclose(cpu["vs_plain"], cpu["seed_steps_per_s"] / plain)
    env = df[df["kind"] == "env"]  # the environment/recipe rows, against the same plain loop
    assert list(env["env_backend"]) == ["batched"] and list(env["recipe"]) == ["tuned_default"]
    np.testing.assert_allclose(env["vs_plain"], env["seed_steps_per_s"] / plain)
    assert (out / "scaling.png").stat().st_size > 0 and (out / "envs.png").stat().st_size > 0
    assert "seed-steps/s" in capsys.readouterr().out


def test_matmul_flops_of_the_default_config_by_hand() -> None:
    c = Config()  # 4 -> 64 -> 64 -> dueling head of 1 + 2, batch 32, an update every 4 steps
    flops = sum(2 * n * k * m * times for n, k, m, times in matmul_shapes(c, 4, 2))
    forward = 2 * (4 * 64 + 64 * 64 + 64 * 3)  # one observation through the network
    per_update = 32 * forward * (2 + 2)  # target and online forward, backward twice that
    per_update -= 32 * 2 * 4 * 64  # but no gradient into the input
    assert flops == forward + per_update / 4


def test_the_performance_page_shows_the_committed_bench_run() -> None:
    """docs/performance.md's table is make bench's CPU rows in results/bench/bench.csv."""
    table = pd.read_csv(paths.ROOT / "results" / "bench" / "bench.csv")
    assert bench_out.shown(bench_out.DOC.read_text()) == bench_out.markdown(table)
