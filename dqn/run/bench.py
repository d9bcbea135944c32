"""`make bench`: seed-steps per second against the number of batched seeds S, side by side with
a plain single-seed torch loop (dqn.core.plain) and a matmul roofline.

Every row trains the default config on CartPole-v1 for STEPS environment steps with greedy
evaluation off (one at the very end), one torch thread, denormals flushed. Two rates per run:
end to end (the whole train() call: envs, networks, replay set up, then every step) and steady
state (the clock between two progress callbacks, from a quarter to three quarters of the run,
learning on). The plain loop is timed the same way in the same process and settings.

The roofline: the matrix-product FLOPs one seed-step needs (acting, then per update the target
forward, the online forward and its backward, divided by train_frequency), and the time the
same batched matmuls take on their own on this machine, hot in cache (each in the faster of
its two layouts, (a b) or (b^T a^T)^T). That time bounds
seed-steps/s from above; `roofline_fraction` is how much of it a run reaches.
Environment and recipe rows (ENV_ROWS): CartPole, Acrobot and LunarLander with the tuned
default agent and with notebook C's BatchNorm recipe, on the batched environments
(dqn.core.classic) and on gymnasium's, each against the plain loop of the same run.
Writes results/bench/bench.csv (rows of other devices are kept), scaling.png and envs.png.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

import pandas as pd
import torch

from dqn.base import paths
from dqn.base.config import Config
from dqn.base.provenance import git_commit, versions
from dqn.core.device import cpu_settings, cpu_threads, resolve_device
from dqn.core.envs import dims
from dqn.core.plain import train_plain
from dqn.core.train import train
from dqn.run.bench_out import env_figure, scaling_figure, write_docs
from dqn.run.recipes import find
from dqn.store.tables import write_atomic

COMPONENTS: dict[str, dict[str, object]] = {
    "prioritized replay": {"prioritized_replay": True}, "3-step returns": {"n_step": 3},
    "noisy networks": {"noisy": True}}
"""Rows timing Rainbow's components against the default agent (kind: the name)."""
STEPS = 20_000
ENV_ROWS: tuple[tuple[str, str, str, str, int, int], ...] = (
    # (env_id, recipe, env_backend, batchnorm_backward, S, steps): each environment with the
    # tuned default agent on both environment backends where there is a batched one, and
    # notebook C's BatchNorm recipe (an update of batch 128 every step, so fewer steps) with
    # autograd's and the written-out BatchNorm pass
    ("CartPole-v1", "tuned_default", "batched", "autograd", 128, STEPS),
    ("CartPole-v1", "tuned_default", "gymnasium", "autograd", 128, STEPS),
    ("Acrobot-v1", "tuned_default", "batched", "autograd", 128, STEPS),
    ("Acrobot-v1", "tuned_default", "gymnasium", "autograd", 128, STEPS),
    ("LunarLander-v3", "tuned_default", "gymnasium", "autograd", 128, STEPS // 4),
    ("CartPole-v1", "notebook_c", "batched", "autograd", 32, STEPS // 5),
    ("CartPole-v1", "notebook_c", "batched", "manual", 32, STEPS // 5),
    ("Acrobot-v1", "notebook_c", "batched", "manual", 32, STEPS // 5),
    ("LunarLander-v3", "notebook_c", "gymnasium", "manual", 32, STEPS // 10),
)
"""Rows timing environments and recipes (kind "env"), each against the plain loop."""
CPU_SIZES = (1, 8, 32, 128)
GPU_SIZES = (1, 8, 32, 128, 512, 1024, 4096)


def _rss_mb() -> float:
    """Current resident memory of this process (Linux), in MiB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_config(device: str, steps: int) -> Config:
    """The default config, evaluated once at the end, logging often enough to time windows."""
    return Config(device=device, total_steps=steps, eval_every=steps, eval_episodes=1,
                  log_every=250)


def _window(steps: int) -> tuple[int, int]:
    """The steady-state window: from a quarter to three quarters of the run (log steps)."""
    return 250 * round(steps / 4 / 250), 250 * round(3 * steps / 4 / 250)


def measure(S: int, device: str, steps: int, **overrides: object) -> dict[str, float]:
    """One batched run of S seeds (the bench config with `overrides`): end-to-end and
    steady-state seed-steps per second."""
    lo, hi = _window(steps)
    marks: dict[int, tuple[float, float]] = {}

    def progress(step: int, _: dict[str, float]) -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        marks[step] = (time.perf_counter(), _rss_mb())

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    train(bench_config(device, steps).replace(**overrides), list(range(S)), progress=progress)
    seconds = time.perf_counter() - start
    (t0, rss0), (t1, rss1) = marks[lo], marks[hi]
    return {"S": S, "seconds": seconds, "seed_steps_per_s": S * steps / seconds,
            "steady_seed_steps_per_s": S * (hi - lo) / (t1 - t0),
            "rss_mb": rss1, "rss_growth_mb": rss1 - rss0,
            "gpu_peak_mb": (torch.cuda.max_memory_allocated() / 2**20
                            if device.startswith("cuda") else float("nan"))}


def against(r: dict[str, float], plain: dict[str, float]) -> dict[str, float]:
    """A row's end-to-end and steady rates as multiples of the plain loop's in the same run."""
    return {"vs_plain": r["seed_steps_per_s"] / plain["seed_steps_per_s"],
            "steady_vs_plain": r["steady_seed_steps_per_s"] / plain["steady_seed_steps_per_s"]}


def measure_plain(steps: int) -> dict[str, float]:
    """The plain single-seed loop on the CPU, timed like `measure`."""
    lo, hi = _window(steps)
    marks: dict[int, float] = {}
    with cpu_settings(torch.device("cpu")):
        run = train_plain(bench_config("cpu", steps), 0,
                          progress=lambda step, _: marks.__setitem__(step, time.perf_counter()),
                          progress_every=250)
    return {"S": 1, "seconds": run.seconds, "seed_steps_per_s": steps / run.seconds,
            "steady_seed_steps_per_s": (hi - lo) / (marks[hi] - marks[lo]),
            "rss_mb": _rss_mb()}


def matmul_shapes(c: Config, obs_dim: int, n_actions: int) -> list[tuple[int, int, int, float]]:
    """(N, K, M, times per seed-step) of every per-seed matrix product (N x K) @ (K x M) in a
    seed-step: acting on one observation, and per update (every train_frequency steps) the
    target forward, the online forward and its backward (dW = h^T dy, dh = dy W^T)."""
    widths = [obs_dim, *c.hidden, n_actions + (1 if c.dueling else 0)]
    layers = list(zip(widths, widths[1:], strict=False))
    per_update = c.gradient_steps / c.train_frequency
    forwards = 2 + (1 if c.double_dqn else 0)  # target, online on s (and online on s')
    B = c.batch_size
    shapes = [(1, k, m, 1.0) for k, m in layers]
    shapes += [(B, k, m, forwards * per_update) for k, m in layers]
    shapes += [(k, B, m, per_update) for k, m in layers]  # dW
    shapes += [(B, m, k, per_update) for k, m in layers[1:]]  # dh (not into the input)
    return shapes


def roofline(c: Config, S: int, device: str) -> dict[str, float]:
    """Matmul FLOPs per seed-step, and the seed-steps/s bound the batched matmuls alone give."""
    obs_dim, n_actions, _ = dims(c.env_id)
    dev = torch.device(device)
    flops = seconds = 0.0
    with cpu_settings(dev):
        for N, K, M, times in matmul_shapes(c, obs_dim, n_actions):
            a, b = torch.randn(S, N, K, device=dev), torch.randn(S, K, M, device=dev)
            a_t, b_t = a.transpose(1, 2).contiguous(), b.transpose(1, 2).contiguous()
            # the faster of the two layouts of the same product, (a b) or (b^T a^T)^T
            best = min(_time(torch.bmm, (a, b), dev), _time(torch.bmm, (b_t, a_t), dev))
            seconds += times * best / S
            flops += times * 2 * N * K * M
    return {"flops_per_seed_step": flops, "bmm_gflops": flops / seconds / 1e9,
            "roofline_seed_steps_per_s": 1 / seconds}


def _time(op, args: tuple, dev: torch.device, reps: int = 20) -> float:
    """Seconds per call of op(*args) after a warm-up, the device synchronised around it."""
    for _ in range(5):
        op(*args)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        op(*args)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps


def main(device: str = "auto", out: Path = Path("results/bench"), tiny: bool = False) -> int:
    """Run the benchmark, print a table, write bench.csv and scaling.png; returns 0."""
    dev = str(resolve_device(device))
    sizes = (1, 4) if tiny else (GPU_SIZES if dev.startswith("cuda") else CPU_SIZES)
    steps = 1_000 if tiny else STEPS
    common = {"device": dev, "device_name": _device_name(dev),
              "threads": cpu_threads() if dev == "cpu" else 0, "steps": steps,
              "commit": git_commit(), **versions()}
    plain = measure_plain(steps)
    rows = [{**common, "device": "cpu", "kind": "plain loop", **plain,
             "vs_plain": 1.0, "steady_vs_plain": 1.0}]
    print(f"plain loop  {plain['seed_steps_per_s']:>9,.0f} seed-steps/s end to end, "
          f"{plain['steady_seed_steps_per_s']:>9,.0f} steady", flush=True)
    for S in sizes:
        r = measure(S, dev, steps) | roofline(bench_config(dev, steps), S, dev)
        r |= against(r, plain)
        r["roofline_fraction"] = r["steady_seed_steps_per_s"] / r["roofline_seed_steps_per_s"]
        rows.append({**common, "kind": "batched", **r})
        print(f"S={S:>5}  {r['seed_steps_per_s']:>9,.0f} seed-steps/s end to end "
              f"(x{r['vs_plain']:.1f} plain), {r['steady_seed_steps_per_s']:>9,.0f} steady "
              f"(x{r['steady_vs_plain']:.1f}); roofline {r['roofline_seed_steps_per_s']:,.0f} "
              f"({r['roofline_fraction']:.0%} reached, {r['bmm_gflops']:.0f} GFLOP/s matmuls)"
              f"  rss {r['rss_mb']:,.0f} MiB", flush=True)
    for S in (sizes[0], sizes[-1]):  # what Rainbow's components cost, at both ends
        for kind, overrides in COMPONENTS.items():
            r = measure(S, dev, steps, **overrides)
            base = next(row for row in rows if row["kind"] == "batched" and row["S"] == S)
            r["vs_default"] = r["seed_steps_per_s"] / base["seed_steps_per_s"]
            rows.append({**common, "kind": kind, **r})
            print(f"S={S:>5}  {kind}: {r['seed_steps_per_s']:>9,.0f} seed-steps/s end to end "
                  f"({r['vs_default']:.2f} of the default agent's)", flush=True)
    for env_id, recipe, backend, bn, S, n in (ENV_ROWS[:1] if tiny else ENV_ROWS):
        overrides = {**find(recipe, "make bench").keys, "env_id": env_id,
                     "env_backend": backend, "batchnorm_backward": bn}
        r = measure(S if not tiny else sizes[-1], dev, steps if tiny else n, **overrides)
        r |= against(r, plain)
        rows.append({**common, "kind": "env", "env_id": env_id, "recipe": recipe,
                     "env_backend": backend, "batchnorm_backward": bn, **r,
                     "steps": steps if tiny else n})
        print(f"S={r['S']:>5}  {env_id} {recipe} ({backend} envs, {bn} BatchNorm pass): "
              f"{r['seed_steps_per_s']:>9,.0f} seed-steps/s end to end "
              f"(x{r['vs_plain']:.1f} plain), {r['steady_seed_steps_per_s']:>9,.0f} steady",
              flush=True)
    new = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.csv"
    if path.exists():  # keep the other devices' measurements for the scaling figure
        old = pd.read_csv(path)
        new = pd.concat([old[old["device"] != dev], new], ignore_index=True)
    write_atomic(path, lambda tmp: new.to_csv(tmp, index=False))
    scaling_figure(new, out / "scaling.png")
    env_figure(new[new["device"] == dev], out / "envs.png")
    print(f"wrote {path}, {out / 'scaling.png'} and {out / 'envs.png'}")
    if out.resolve() == (paths.ROOT / "results" / "bench").resolve() and dev == "cpu":
        write_docs(new)
        print("updated the CPU table in docs/performance.md")
    return 0


def _device_name(dev: str) -> str:
    if dev.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(dev))
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
