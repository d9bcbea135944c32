"""A tiny two-variant study file shared by the runner, executor and Ray tests."""

from __future__ import annotations

import json
from pathlib import Path

import dqn.core.train
from dqn.base.schema import TABLES

_REAL_TRAIN = dqn.core.train.train

TINY_BODY = """
[base]
total_steps = 300
learning_starts = 100
eval_every = 150
eval_episodes = 1
log_every = 100
buffer_size = 300
batch_size = 16
device = "cpu"

[variants.baseline]

[variants.no_target]
target = "none"
"""


def tiny_study_text(question: str, seeds: int, top: str = "") -> str:
    """Study-file text: `top` holds extra top-level keys (e.g. "seed_chunk = 2\\n")."""
    return f'question = "{question}"\nseeds = {seeds}\n{top}' + TINY_BODY


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (lock files aside) and its bytes: to show nothing was touched."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".lock")}


def csv_bytes(out: Path) -> dict[str, bytes]:
    """The study CSVs of a results folder, as bytes."""
    return {t: (out / f"{t}.csv").read_bytes() for t in TABLES}


def records_of(out: Path) -> dict[str, tuple]:
    """What run.json says each variant holds, without timings: (config hash, seeds, chunk
    seeds with their row records)."""
    run = json.loads((out / "run.json").read_text())
    return {v: (m["config_hash"], m["seeds"],
                [(ch["seeds"], ch["rows"], ch["sha256"]) for ch in m["chunks"]])
            for v, m in run["variants"].items()}


_TRAINED: dict[tuple[str, tuple[int, ...]], object] = {}


def memo_train(monkeypatch) -> list[tuple[str, list[int]]]:
    """Patch dqn.core.train.train to train each (config, seeds) once per test session (training is
    deterministic, so a cached run is the run); returns the log of (variant target, seeds)
    units asked for."""
    real = _REAL_TRAIN
    calls: list[tuple[str, list[int]]] = []

    def train(config, seeds, progress=None):
        calls.append((config.target, list(seeds)))
        key = (config.hash(), tuple(seeds))
        if key not in _TRAINED:
            _TRAINED[key] = real(config, seeds)
        return _TRAINED[key]

    monkeypatch.setattr(dqn.core.train, "train", train)
    return calls
