"""The figures of a study (seven for an adaptive one), written next to its CSVs
(deterministic files, no torch): dqn.figures.curves draws those over training time,
dqn.figures.scores those of final scores.

Every figure is titled with the study's name and question, colours one variant the same way in
all figures (baseline black, no colour repeated), and uses the metric names of
`dqn.analysis.scoring`.
When the variants run on different environments, returns are drawn normalised to [0, 1] per
environment (`figure_style.on_common_scale`). Returns axes span the environment's return range.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

from dqn.analysis import cache
from dqn.analysis.results import load as load_results
from dqn.analysis.scoring import study_scores
from dqn.base.parallel import process_map
from dqn.base.schema import TABLES
from dqn.figures import curves
from dqn.figures import scores as score_figures
from dqn.figures import style as fs
from dqn.figures.scores import FIXED_SEEDS
from dqn.figures.style import warn
from dqn.stats.estimators import N_RESAMPLES
from dqn.store.store import StoreError

FIGURES = ("learning_curves", "per_seed_curves", "final_scores", "prob_improvement",
           "diagnostics", "performance_profile")
"""Every study's figures."""
STUDY_CSVS = tuple(f"{t}.csv" for t in TABLES)
ADAPTIVE_FIGURES = ("seeds_used",)
"""An adaptive study's figures besides."""
__all__ = ["ADAPTIVE_FIGURES", "FIGURES", "FIXED_SEEDS", "draw_studies", "make_figures"]


def make_figures(study_dir: Path, n_resamples: int = N_RESAMPLES,
                 formats: tuple[str, ...] = ("png",), subtitle: bool = True) -> list[Path]:
    """Write summary.csv (recomputed only when stale: dqn.analysis.cache) and the figures of
    results/<study>/ (each in every format of
    `formats`; `subtitle` False leaves out question and captions); return the files written.

    Gaps in the data are printed as warnings and the figures that need the missing part are
    skipped, so an incomplete study still gets whatever can be drawn.
    """
    study_dir = Path(study_dir)
    if not any((study_dir / name).is_file() for name in ("run.json", *STUDY_CSVS)):
        # never a stray summary.csv in a folder that holds no study
        raise StoreError(f"{study_dir}: no run.json or study CSVs here, so no study's results")
    study = load_results(study_dir)
    for reason in study.incomplete:
        warn(f"{study.name}: {reason}")
    scores = study_scores(study)
    summary = cache.cached_summary(study_dir, n_resamples, study=study, scores=scores)
    written = [study_dir / "summary.csv"]
    if study.evals is None or not fs.present(study):
        warn(f"{study.name}: no evaluations, figures skipped")
        return written
    final_iqm = dict(zip(summary["variant"], summary["final_iqm"], strict=True))
    # above fs.HIGHLIGHT_AT variants, curves draw all but these in grey
    grey = fs.highlighted(fs.present(study), study.baseline, final_iqm)
    colours = fs.variant_colours(study.variants, study.baseline, first=grey)
    out = fs.Output(study_dir, formats, subtitle)
    shown = fs.on_common_scale(study)  # eval returns as the curves draw them
    makers: list[Callable[[], list[Path] | None]] = [
        lambda: curves.learning_curves(shown, colours, out, n_resamples, grey),
        lambda: curves.per_seed_curves(shown, colours, out, scores),
        lambda: score_figures.final_scores(study, colours, out, scores, summary),
        lambda: score_figures.prob_improvement(study, colours, out, summary),
        lambda: curves.diagnostics(study, colours, out, grey),
        lambda: score_figures.performance_profile(study, colours, out, scores, grey),
        lambda: score_figures.seeds_used(study, colours, out, summary),
    ]
    with sns.axes_style("whitegrid"), plt.rc_context({"axes.titlesize": 10}):
        for make in makers:
            written += make() or []
    return written


def _draw(args: tuple[Path, tuple[str, ...], bool, int]) -> tuple[list[Path], str | None]:
    """make_figures for one study in a worker: its files, or the StoreError's message."""
    study_dir, formats, subtitle, n_resamples = args
    try:
        return make_figures(study_dir, n_resamples, formats, subtitle), None
    except StoreError as e:  # the other studies' figures are still drawn
        return [], str(e)


def draw_studies(dirs: list[Path], formats: tuple[str, ...] = ("png",), subtitle: bool = True,
                 jobs: int | None = None, n_resamples: int = N_RESAMPLES,
                 ) -> Iterator[tuple[Path, list[Path], str | None]]:
    """make_figures for every study folder, `jobs` processes at once (default: one per CPU
    core); yields (folder, files written, error or None) in the order of `dirs`. Each study
    draws alone in its process, so the files are the same bytes whatever the job count."""
    work = [(d, formats, subtitle, n_resamples) for d in dirs]
    yield from ((d, *r) for d, r in zip(dirs, process_map(_draw, work, jobs), strict=True))
