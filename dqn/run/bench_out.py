"""make bench's outputs: the scaling and environment figures, and the CPU table in
docs/performance.md (between its bench markers), all from results/bench/bench.csv."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import pandas as pd

from dqn.base import paths
from dqn.store.tables import write_atomic

matplotlib.use("Agg")  # headless and deterministic: no display, no interactive backend

import matplotlib.pyplot as plt  # noqa: E402

DOC = paths.ROOT / "docs" / "performance.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def markdown(df: pd.DataFrame) -> str:
    """The CPU rows of bench.csv as a table: every row's end-to-end and steady seed-steps/s
    and both against the plain loop of the same run."""
    cpu = df[df["device"] == "cpu"]
    lines = ["| row | S | steps | end to end seed-steps/s | vs plain | steady seed-steps/s "
             "| vs plain |", "|---|---|---|---|---|---|---|"]
    for r in cpu.itertuples():
        if r.kind == "env":
            name = f"{r.env_id}, {r.recipe}, {r.env_backend} envs"
            if r.recipe == "notebook_c":
                name += f", {r.batchnorm_backward} BatchNorm pass"
        elif r.kind == "batched":
            name = "default agent, CartPole-v1"
        else:
            name = str(r.kind)
        vs = "" if pd.isna(getattr(r, "vs_plain", float("nan"))) else f"{r.vs_plain:.1f}x"
        steady_vs = ("" if pd.isna(getattr(r, "steady_vs_plain", float("nan")))
                     else f"{r.steady_vs_plain:.1f}x")
        lines.append(f"| {name} | {int(r.S)} | {int(r.steps):,} | {r.seed_steps_per_s:,.0f} "
                     f"| {vs} | {r.steady_seed_steps_per_s:,.0f} | {steady_vs} |")
    lines += ["", *targets(cpu)]
    first = cpu.iloc[0] if len(cpu) else None
    if first is not None:
        lines.append("")
        lines.append(f"Measured by `make bench` at commit {first['commit']} on "
                     f"{first['device_name']}, {int(first['threads'])} torch thread(s), "
                     f"torch {first['torch']}.")
    return "\n".join(lines)


def targets(cpu: pd.DataFrame) -> list[str]:
    """Speed II's targets (issue 34), each read from the rows of one bench run."""
    def rate(kind: str, S: int, **match: str) -> float:
        rows = cpu[(cpu["kind"] == kind) & (cpu["S"] == S)]
        for key, value in match.items():
            rows = rows[rows[key] == value]
        return float(rows["seed_steps_per_s"].iloc[0]) if len(rows) else float("nan")

    plain = rate("plain loop", 1)
    cartpole = rate("env", 128, env_id="CartPole-v1", recipe="tuned_default",
                    env_backend="batched")
    checks = [
        ("CartPole-v1, S = 128: at least 100,000 seed-steps/s", rate("batched", 128), 100_000),
        ("CartPole-v1, S = 32: at least 60,000 seed-steps/s", rate("batched", 32), 60_000),
        ("Acrobot-v1, S = 128: at least 0.8x CartPole's (batched envs)",
         rate("env", 128, env_id="Acrobot-v1", env_backend="batched") / cartpole, 0.8),
        ("notebook C, CartPole-v1, S = 32: at least 3x the autograd pass",
         rate("env", 32, env_id="CartPole-v1", recipe="notebook_c", batchnorm_backward="manual")
         / rate("env", 32, env_id="CartPole-v1", recipe="notebook_c",
                batchnorm_backward="autograd"), 3.0),
        ("S = 1: at least the plain loop", rate("batched", 1) / plain, 1.0),
    ]
    lines = ["| target (end to end) | measured | |", "|---|---|---|"]
    for text, value, goal in checks:
        measured = f"{value:,.0f}" if goal > 100 else f"{value:.2f}x"
        verdict = "not measured" if math.isnan(value) else "met" if value >= goal else "missed"
        lines.append(f"| {text} | {measured} | {verdict} |")
    return lines


def shown(text: str) -> str:
    """The table between the markers of a docs page's text."""
    return text[text.index(START) + len(START):text.index(END)].strip()


def write_docs(df: pd.DataFrame, doc: Path = DOC) -> None:
    """Put markdown(df) between the bench markers of docs/performance.md."""
    text = doc.read_text()
    new = text[:text.index(START) + len(START)] + "\n" + markdown(df) + "\n" + text[
        text.index(END):]
    write_atomic(doc, lambda tmp: Path(tmp).write_text(new))


def scaling_figure(df: pd.DataFrame, path: Path) -> None:
    """Seed-steps per second vs S, log-log, per device: end to end and steady state, the
    matmul roofline, and the plain single-seed loop with the 10x-it line."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    kind = df["kind"] if "kind" in df else pd.Series("batched", index=df.index)
    batched = df[kind == "batched"]
    for i, (dev, g) in enumerate(batched.groupby("device", sort=True)):
        g = g.sort_values("S")
        colour = f"C{i}"
        label = f"{dev} ({g['device_name'].iloc[0]}, {int(g['threads'].iloc[0]) or ''} thr)"
        ax.plot(g["S"], g["seed_steps_per_s"], "o-", color=colour,
                label=f"{label}: end to end")
        if "steady_seed_steps_per_s" in g and g["steady_seed_steps_per_s"].notna().any():
            ax.plot(g["S"], g["steady_seed_steps_per_s"], "s--", color=colour, alpha=0.7,
                    label=f"{dev}: steady state")
        if "roofline_seed_steps_per_s" in g and g["roofline_seed_steps_per_s"].notna().any():
            ax.plot(g["S"], g["roofline_seed_steps_per_s"], ":", color=colour, lw=2,
                    label=f"{dev}: matmul roofline")
    plain = df[kind == "plain loop"]
    if len(plain):
        rate = float(plain["seed_steps_per_s"].iloc[0])
        ax.axhline(rate, color="0.3", lw=1.5, label=f"plain single-seed loop ({rate:,.0f})")
        ax.axhline(10 * rate, color="0.3", lw=1, ls="-.", label="10x the plain loop")
    ax.set(xscale="log", yscale="log", xlabel="seeds trained in lockstep, S",
           ylabel="seed-steps per second",
           title="Batching seeds: throughput vs number of seeds\n"
                 "(default config, CartPole-v1, one thread, evaluation off)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png",
                                               metadata={"Software": None}))
    plt.close(fig)


def env_figure(df: pd.DataFrame, path: Path) -> None:
    """Seed-steps per second of each environment/recipe row (end to end and steady state),
    beside the plain single-seed loop of the same run."""
    env = df[df["kind"] == "env"] if "kind" in df else df.iloc[:0]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * max(len(env), 2) + 1.5))
    labels = [f"{r.env_id}, {r.recipe}, {r.env_backend} envs, S={int(r.S)}"
              for r in env.itertuples()]
    y = range(len(env))
    ax.barh([i + 0.2 for i in y], env["seed_steps_per_s"], height=0.4, label="end to end")
    ax.barh([i - 0.2 for i in y], env["steady_seed_steps_per_s"], height=0.4, alpha=0.7,
            label="steady state")
    plain = df[df["kind"] == "plain loop"] if "kind" in df else df.iloc[:0]
    if len(plain):
        rate = float(plain["seed_steps_per_s"].iloc[0])
        ax.axvline(rate, color="0.3", lw=1.5, label=f"plain single-seed loop ({rate:,.0f})")
    ax.set_yticks(list(y), labels, fontsize=7.5)
    ax.invert_yaxis()
    ax.set(xscale="log", xlabel="seed-steps per second",
           title="Environments and recipes (one thread, evaluation off)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="lower right")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png",
                                               metadata={"Software": None}))
    plt.close(fig)
