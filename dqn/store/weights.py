"""Each finished unit's final network weights, kept beside its CSVs so that a trained agent can
be watched again (`python -m dqn play`).

results/<study>/weights/<variant>/seeds-<label>.npz holds one unit: `params` (S, P) and
`stats` (S, n_stats) as training left them, the unit's `seeds` (S,), and `meta`, a JSON text
with the network's architecture (the fields of networks.NetSpec) and the hash of the config
that trained them. A seed's weights live in one file: writing a unit removes every earlier
file sharing a seed with it.

Weights are not results: what a run found is the CSVs and run.json, checked against each
other. A weights file is trusted only while its config hash is the one run.json records for
its variant, so weights of an older run are never shown as this one's. The folder keeps
itself out of git (its own .gitignore, `*`) unless the study file sets `commit_weights = true`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dqn.store.store import StoreError, read_run
from dqn.store.tables import write_atomic
from dqn.store.units import seeds_label

FOLDER = "weights"
IGNORE_ALL = "# final network weights: kept out of git (study key commit_weights)\n*\n"


class WeightsError(ValueError):
    """No trustworthy weights for the seed asked for; the message says why and what to do."""


class Weights(Protocol):
    """What training returns (dqn.core.records.FinalWeights)."""

    spec: dict[str, Any]
    params: np.ndarray  # (S, P)
    stats: np.ndarray  # (S, n_stats)


@dataclass(frozen=True)
class SeedWeights:
    """One seed's final network and what it takes to rebuild and run it."""

    variant: str
    seed: int
    config: dict[str, Any]  # the variant's config, as run.json records it
    spec: dict[str, Any]  # the fields of networks.NetSpec
    params: np.ndarray  # (P,)
    stats: np.ndarray  # (n_stats,)
    path: Path


def save(out: Path, variant: str, seeds: Sequence[int], config_hash: str, weights: Weights,
         in_git: bool = False) -> Path:
    """Write one unit's weights (atomically); returns the file."""
    root = out / FOLDER
    folder = root / variant
    folder.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if in_git:
        ignore.unlink(missing_ok=True)
    elif not ignore.exists():
        ignore.write_text(IGNORE_ALL)
    for old in folder.glob("seeds-*.npz"):
        held = _seeds_in(old)
        if held is None or set(held) & set(seeds):  # superseded, or unreadable
            old.unlink()
    meta = json.dumps({"variant": variant, "config_hash": config_hash, "spec": weights.spec})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a path
            np.savez(f, params=np.asarray(weights.params, dtype=np.float32),
                     stats=np.asarray(weights.stats, dtype=np.float32),
                     seeds=np.asarray(list(seeds), dtype=np.int64), meta=np.array(meta))

    return write_atomic(folder / f"seeds-{seeds_label(seeds)}.npz", write)


def recorded(out: Path, variant: str, seed: int) -> dict[str, Any]:
    """run.json's record of `variant` (config, config_hash, seeds...), checking that `seed` is
    one of its finished seeds. Raises WeightsError naming what is missing."""
    try:
        run = read_run(out)
    except StoreError as e:
        raise WeightsError(str(e)) from None
    if not run["variants"]:
        raise WeightsError(f"{out}: no finished results here (no run.json or no variants)")
    meta = run["variants"].get(variant)
    if meta is None:
        raise WeightsError(f"{out}: no variant {variant!r}; finished variants: "
                           + ", ".join(run["variants"]))
    if seed not in meta["seeds"]:
        raise WeightsError(f"{out}: variant {variant!r} has no seed {seed}; its seeds: "
                           f"{seeds_label(sorted(meta['seeds']))}")
    return meta


def load(out: Path, variant: str, seed: int) -> SeedWeights:
    """The final weights of `seed` of `variant` in the study folder `out`, checked against
    run.json. Raises WeightsError saying what is missing."""
    meta = recorded(out, variant, seed)
    stale = None
    for path in sorted((out / FOLDER / variant).glob("seeds-*.npz")):
        try:
            with np.load(path) as data:
                seeds = [int(s) for s in data["seeds"].tolist()]
                if seed not in seeds:
                    continue
                info = json.loads(str(data["meta"]))
                if info["config_hash"] != meta["config_hash"]:
                    stale = path
                    continue
                i = seeds.index(seed)
                return SeedWeights(variant, seed, meta["config"], info["spec"],
                                   data["params"][i].copy(), data["stats"][i].copy(), path)
        except (OSError, ValueError, KeyError, EOFError):  # not a weights file: skipped
            continue
    why = (f"{stale} holds weights of an earlier run with another config" if stale else
           f"{out / FOLDER / variant} has no weights for seed {seed}: weights are kept out "
           "of git, and runs before weights were kept did not write them")
    raise WeightsError(f"{why}. Retrain the seed alone (seeds are independent: it gets the "
                       "same numbers) with --retrain, or rerun the variant")


def _seeds_in(path: Path) -> list[int] | None:
    """The seeds a weights file holds; None when it is not a readable weights file."""
    try:
        with np.load(path) as data:
            json.loads(str(data["meta"]))
            return [int(s) for s in data["seeds"].tolist()]
    except (OSError, ValueError, KeyError, EOFError):
        return None
