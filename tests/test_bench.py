"""`make bench` in a tiny configuration writes a well-formed table and figure (no timing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dqn.bench import main


def test_tiny_bench_writes_table_and_figure(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    (out).mkdir()
    # a row from another device must survive a CPU run (the figure draws every device)
    pd.DataFrame([{"device": "cuda", "device_name": "x", "threads": 0, "S": 1,
                   "seed_steps_per_s": 1.0}]).to_csv(out / "bench.csv", index=False)
    assert main("cpu", out, tiny=True) == 0
    df = pd.read_csv(out / "bench.csv")
    cpu = df[df["device"] == "cpu"]
    assert list(cpu["S"]) == [1, 4]
    assert (df["device"] == "cuda").sum() == 1
    for col in ("lockstep_steps_per_s", "seed_steps_per_s", "rss_mb", "commit", "torch"):
        assert cpu[col].notna().all(), col
    np.testing.assert_allclose(cpu["seed_steps_per_s"], cpu["S"] * cpu["lockstep_steps_per_s"])
    assert cpu.loc[cpu["S"] == 4, "batching_gain"].notna().all()
    assert (out / "scaling.png").stat().st_size > 0
    assert "seed-steps/s" in capsys.readouterr().out
