"""`make bench`: seed-steps per second against the number of batched seeds S.

For each S the default config trains on CartPole-v1; the clock runs between two progress
callbacks after a warm-up (learning already on), so start-up and evaluation are excluded. The
same work done one seed at a time (S runs of S=1 in a row) is timed side by side for S = 8, 32.
Writes results/bench/bench.csv (rows of other devices are kept) and scaling.png.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

import matplotlib
import pandas as pd
import torch

from dqn.config import Config
from dqn.device import cpu_threads, resolve_device
from dqn.provenance import git_commit, versions
from dqn.tables import write_atomic
from dqn.train import train

matplotlib.use("Agg")  # headless and deterministic: no display, no interactive backend

import matplotlib.pyplot as plt  # noqa: E402

CPU_SIZES = (1, 8, 32, 128)
GPU_SIZES = (1, 8, 32, 128, 512, 1024, 4096)
ONE_AT_A_TIME = (8, 32)  # S values also timed as S single-seed runs in a row


def _rss_mb() -> float:
    """Current resident memory of this process (Linux), in MiB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(S: int, device: str, warmup: int, steps: int) -> dict[str, float]:
    """Lockstep steps per second of the default config with S seeds, after `warmup` steps."""
    interval = 250
    total = warmup + steps + interval
    config = Config(device=device, total_steps=total, learning_starts=warmup // 2,
                    eval_every=10 * total, log_every=interval)
    marks: dict[int, tuple[float, float]] = {}

    def progress(step: int, _: dict[str, float]) -> None:
        if torch.cuda.is_available() and device.startswith("cuda"):
            torch.cuda.synchronize()
        marks[step] = (time.perf_counter(), _rss_mb())

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    train(config, list(range(S)), progress=progress)
    (t0, rss0), (t1, rss1) = marks[warmup], marks[warmup + steps]
    out = {"lockstep_steps_per_s": steps / (t1 - t0), "rss_mb": rss1,
           "rss_growth_mb": rss1 - rss0, "seconds": t1 - t0}
    out["seed_steps_per_s"] = S * out["lockstep_steps_per_s"]
    out["gpu_peak_mb"] = (torch.cuda.max_memory_allocated() / 2**20
                          if device.startswith("cuda") else float("nan"))
    return out


def main(device: str = "auto", out: Path = Path("results/bench"), tiny: bool = False) -> int:
    """Run the benchmark, print a table, write bench.csv and scaling.png; returns 0."""
    dev = str(resolve_device(device))
    threads = cpu_threads() if dev == "cpu" else 0  # what train() runs with
    sizes = (1, 4) if tiny else (GPU_SIZES if dev.startswith("cuda") else CPU_SIZES)
    warmup, steps = (500, 250) if tiny else (1_500, 1_500)
    sequential_sizes = (4,) if tiny else ONE_AT_A_TIME
    common = {"device": dev, "device_name": _device_name(dev), "threads": threads,
              "commit": git_commit(), **versions()}
    rows = []
    for S in sizes:
        r = measure(S, dev, warmup, steps)
        row = {**common, "S": S, **r}
        if S in sequential_sizes:
            # the same work as S runs of one seed in a row, each timed the same way
            seconds = sum(measure(1, dev, warmup, steps)["seconds"] for _ in range(S))
            row["one_at_a_time_seed_steps_per_s"] = S * steps / seconds
            row["batching_gain"] = r["seed_steps_per_s"] / row["one_at_a_time_seed_steps_per_s"]
        rows.append(row)
        print(f"S={S:>5}  {r['lockstep_steps_per_s']:>8,.0f} lockstep steps/s  "
              f"{r['seed_steps_per_s']:>11,.0f} seed-steps/s  rss {r['rss_mb']:,.0f} MiB"
              + (f"  gpu peak {r['gpu_peak_mb']:,.0f} MiB" if dev.startswith("cuda") else "")
              + (f"  batched/one-at-a-time x{row['batching_gain']:.1f}"
                 if "batching_gain" in row else ""), flush=True)
    new = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.csv"
    if path.exists():  # keep the other devices' measurements for the scaling figure
        old = pd.read_csv(path)
        new = pd.concat([old[old["device"] != dev], new], ignore_index=True)
    write_atomic(path, lambda tmp: new.to_csv(tmp, index=False))
    _figure(new, out / "scaling.png")
    print(f"wrote {path} and {out / 'scaling.png'}")
    return 0


def _device_name(dev: str) -> str:
    if dev.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(dev))
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _figure(df: pd.DataFrame, path: Path) -> None:
    """Seed-steps per second vs S, log-log, one line per device, with ideal linear scaling."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (dev, g) in enumerate(df.groupby("device", sort=True)):
        g = g.sort_values("S")
        colour = f"C{i}"
        label = f"{dev} ({g['device_name'].iloc[0]}, {int(g['threads'].iloc[0]) or ''} thr)"
        ax.plot(g["S"], g["seed_steps_per_s"], "o-", color=colour, label=label)
        first = g.iloc[0]
        ax.plot(g["S"], first["seed_steps_per_s"] * g["S"] / first["S"], ":", color=colour,
                alpha=0.6, label=f"{dev}: ideal linear scaling")
    ax.set(xscale="log", yscale="log", xlabel="seeds trained in lockstep, S",
           ylabel="seed-steps per second",
           title="Batching seeds: throughput vs number of seeds\n(default config, CartPole-v1)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png",
                                               metadata={"Software": None}))
    plt.close(fig)
