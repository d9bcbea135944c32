"""summary.csv and windows.csv cached by fingerprint: a study's (or atlas column's) summary and
final-window sensitivity table (dqn.analysis.windows) are recomputed only when its data, the
analysis code or the resample count changed, so redrawing figures and rewriting the report
take seconds instead of the bootstrap's minutes.

Beside each summary.csv, summary.source holds the sha256 of what both were computed from. The
tables returned are always the ones read back from the CSVs, so a cached read and a fresh
computation give the same table, float for float.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from dqn.analysis.results import StudyResults, learn_envs
from dqn.analysis.results import load as load_results
from dqn.analysis.scoring import summarize, write_summary
from dqn.analysis.windows import window_table
from dqn.base import env_facts
from dqn.base.parallel import process_map
from dqn.stats.estimators import N_RESAMPLES
from dqn.store.tables import write_atomic

SUMMARY_SOURCE = "summary.source"
"""Beside a summary.csv: the fingerprint of what it was computed from."""
WINDOWS_CSV = "windows.csv"
"""Beside a summary.csv: its final-window sensitivity table (dqn.analysis.windows.COLUMNS)."""
ANALYSIS_CODE = ("analysis/results", "analysis/scoring", "analysis/windows", "stats/estimators",
                 "stats/decisions", "stats/studentized", "stats/equivalence",
                 "stats/sequential", "stats/adaptive_verdicts")
"""The modules a summary's numbers come from (below dqn/): a change to any of them recomputes
it. The environments' facts (dqn.base.env_facts) count by value, those of the study's own
environments: a new environment leaves every other study's summary as it is."""


def fingerprint(folder: Path, n_resamples: int = N_RESAMPLES) -> str:
    """sha256 of a study folder's run.json and evals.csv (the summary's only inputs), the
    analysis code and the bootstrap's resample count."""
    h = hashlib.sha256(f"resamples {n_resamples}".encode())
    code = [Path(__file__).parents[1] / f"{m}.py" for m in ANALYSIS_CODE]
    missing = [str(p) for p in code if not p.is_file()]
    if missing:  # a moved module would silently drop out of the fingerprint
        raise FileNotFoundError(f"ANALYSIS_CODE names modules that do not exist: {missing}")
    for path in [Path(folder) / "run.json", Path(folder) / "evals.csv", *code]:
        h.update(path.name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    h.update(env_facts_used(Path(folder)).encode())
    return h.hexdigest()


def env_facts_used(folder: Path) -> str:
    """The facts (dqn.base.env_facts.EnvFacts, as text) of each environment folder's run.json
    names, sorted by id; empty without a readable run.json."""
    try:
        run = json.loads((folder / "run.json").read_text())
        ids = sorted({info["config"]["env_id"] for info in run["variants"].values()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""  # the summary's own reading of run.json reports what is wrong with it
    learn_envs(folder, run)
    return "\n".join(repr(env_facts.known(env_id)) for env_id in ids)


def cached_summary(folder: Path, n_resamples: int = N_RESAMPLES,
                   study: StudyResults | None = None,
                   scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """folder's summary: its summary.csv when summary.source holds the fingerprint of its data
    and code as they are now; else computed (from `study` and its `scores` when given) and
    written with its fingerprint."""
    folder = Path(folder)
    now = fingerprint(folder, n_resamples)
    source, csv = folder / SUMMARY_SOURCE, folder / "summary.csv"
    if _recorded(folder) == now:
        return read_summary(csv)
    study = study if study is not None else load_results(folder)
    summary = summarize(study, n_resamples, scores=scores)
    write_summary(folder, summary)
    summary = read_summary(csv)  # as written, so a cached read gives the same table
    windows = window_table(study, summary)
    write_atomic(folder / WINDOWS_CSV,
                 lambda tmp: windows.to_csv(tmp, index=False, float_format="%.6g"))
    write_atomic(source, lambda tmp: tmp.write_text(now + "\n"))
    return summary


def cached_windows(folder: Path, n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """folder's windows.csv, brought up to date with its summary (cached_summary)."""
    cached_summary(folder, n_resamples)
    return pd.read_csv(Path(folder) / WINDOWS_CSV)


def read_summary(csv: Path) -> pd.DataFrame:
    """A summary.csv as written by scoring.write_summary."""
    return pd.read_csv(csv)


def _recorded(folder: Path) -> str | None:
    """The fingerprint summary.source records for folder's summary.csv and windows.csv; None
    without all three."""
    folder = Path(folder)
    source, csvs = folder / SUMMARY_SOURCE, (folder / "summary.csv", folder / WINDOWS_CSV)
    return (source.read_text().strip() if source.is_file() and all(c.is_file() for c in csvs)
            else None)


def is_current(folder: Path, n_resamples: int = N_RESAMPLES) -> bool:
    """Whether folder's summary.csv matches its fingerprint (so reading it is enough)."""
    return _recorded(folder) == fingerprint(folder, n_resamples)


def refresh(folders: list[Path], jobs: int | None = None) -> None:
    """Recompute the stale summaries among folders (those holding run.json), `jobs` processes
    at once (default one per CPU core). Each summary depends on its folder alone, so the
    bytes are the same as one at a time."""
    stale = [f for f in folders if (Path(f) / "run.json").is_file() and not is_current(f)]
    list(process_map(cached_summary, stale, jobs))
