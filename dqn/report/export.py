"""`python -m dqn export STUDY`: a study's per-seed scores as arrays for rliable (npz, no torch).

rliable's functions take a dict from algorithm to a score matrix of shape (runs, tasks), and for
curves (runs, tasks, evaluations). A study is one task, so every array here has tasks = 1:

    final/<variant>        (runs, 1)     final score (scoring.FINAL_WINDOW last evaluations)
    final_norm/<variant>   (runs, 1)     the same normalised to [0, 1] by the env's returns
    auc/<variant>          (runs, 1)     normalised area under the evaluation curve
    curves/<variant>       (runs, 1, E)  greedy-evaluation return at each evaluation
    curves_norm/<variant>  (runs, 1, E)  the same normalised
    steps/<variant>        (E,)          the environment step of each evaluation
    seeds/<variant>        (runs,)       which seed each run is

Runs are in seed order. A seed without some evaluation (an unfinished run) has NaN there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dqn.analysis.results import load as load_results
from dqn.analysis.scoring import normalise, study_scores
from dqn.store.tables import write_atomic

FILENAME = "rliable.npz"
SCORES = ("final", "final_norm", "auc")


def arrays(study_dir: Path) -> dict[str, np.ndarray]:
    """Every array of the export (see the module docstring), by key."""
    study = load_results(Path(study_dir))
    scores = study_scores(study)
    out: dict[str, np.ndarray] = {}
    for v in study.variants:
        s = scores[scores["variant"] == v].sort_values("seed")
        for name in SCORES:
            out[f"{name}/{v}"] = s[name].to_numpy(dtype=float)[:, None]  # (runs, 1)
        ev = study.evals[study.evals["variant"] == v] if study.evals is not None else None
        if ev is None or ev.empty:
            continue
        curves = ev.pivot_table(index="seed", columns="env_step", values="return",
                                aggfunc="first").reindex(s["seed"].to_numpy())  # (runs, E)
        out[f"curves/{v}"] = curves.to_numpy(dtype=float)[:, None, :]  # (runs, 1, E)
        out[f"curves_norm/{v}"] = normalise(out[f"curves/{v}"], study.env_of(v))
        out[f"steps/{v}"] = curves.columns.to_numpy(dtype=float)  # (E,)
        out[f"seeds/{v}"] = s["seed"].to_numpy(dtype=int)  # (runs,)
    return out


def export(study_dir: Path, to: Path | None = None) -> Path:
    """Write the arrays to `to` (default results/<study>/rliable.npz); return its path."""
    to = Path(to) if to is not None else Path(study_dir) / FILENAME
    data = arrays(study_dir)
    to.parent.mkdir(parents=True, exist_ok=True)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a path
            np.savez(f, **data)

    return write_atomic(to, save)
