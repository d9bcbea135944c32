"""The figures of a study over training time: learning curves, every seed's curve and the
training diagnostics (dqn.figures.plots draws them all)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dqn.analysis.results import StudyResults
from dqn.figures import style as fs
from dqn.figures.style import CI_TEXT, NORM_TEXT, warn
from dqn.stats.estimators import bootstrap_ci, finite, iqm

BAND_RESAMPLES = 20_000
"""Bootstrap resamples per evaluation point of a learning curve's band. The band is for the
eye: at 20,000 resamples the Monte-Carlo error of a 2.5% quantile is about 0.2% of the
sample's spread, far below a pixel, where the million of summary.csv's CIs cost a minute per
study for nothing visible."""


def learning_curves(study: StudyResults, colours: dict[str, str], out: fs.Output,
                    n_resamples: int, shown: set[str] | None) -> list[Path]:
    """IQM greedy return vs environment steps per variant with a bootstrap band; `shown`:
    the variants kept in colour (fs.highlighted), None for all."""
    variants = fs.present(study)
    caption = (f"Line: IQM over seeds at each evaluation; band: {CI_TEXT}."
               + fs.highlight_caption(shown, len(variants)))
    if study.mixed_env:
        caption += (f" The variants run on different environments: returns are {NORM_TEXT} "
                    "((return - min) / (max - min))." + fs.threshold_caption(study))
    f = fs.Fig(study, "learning curves (IQM of greedy evaluation return)", out,
               caption=caption)
    ax = f.axes[0]
    # grey first, so the highlighted curves are drawn over them
    for v in sorted(variants, key=lambda v: shown is None or v in shown):
        ev = study.evals[study.evals["variant"] == v]
        if shown is not None and v not in shown:
            m = ev.groupby("env_step")["return"].agg(lambda r: iqm(finite(r)))
            ax.plot(m.index, m.to_numpy(), color=fs.OTHERS_COLOUR, lw=0.8, zorder=1)
            continue
        steps, mid, lo, hi = [], [], [], []
        for step, g in ev.groupby("env_step"):
            r = finite(g["return"])
            if r.size == 0:
                continue
            a, b = bootstrap_ci(r, "iqm", n_resamples=min(n_resamples, BAND_RESAMPLES))
            steps.append(step)
            mid.append(float(iqm(r)))
            lo.append(a)
            hi.append(b)
        n = ev["seed"].nunique()
        ax.plot(steps, mid, color=colours[v], lw=2 if v == study.baseline else 1.6,
                label=f"{fs.label(v, study.baseline)}, {n} seeds")
        ax.fill_between(steps, lo, hi, color=colours[v], alpha=0.15, lw=0)
    if shown is not None:
        ax.plot([], [], color=fs.OTHERS_COLOUR, lw=0.8,
                label=f"{len(variants) - len(shown & set(variants))} other variants")
    fs.threshold_line(ax, study)
    fs.steps_axis(ax)
    fs.span_returns(ax, study)
    ax.set_ylabel(fs.eval_label(study))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return f.save("learning_curves")


def per_seed_curves(study: StudyResults, colours: dict[str, str], out: fs.Output,
                    scores: pd.DataFrame) -> list[Path]:
    """One thin line per seed, one panel per variant, collapsed seeds drawn bold."""
    variants = fs.present(study)
    ncols = min(3, len(variants))
    nrows = math.ceil(len(variants) / ncols)
    caption = ("Thin lines: one seed each. Bold: seeds that collapsed (reached the solved "
               "threshold, then fell below half of it). x: first evaluation after the seed's "
               "loss diverged (NaN/inf). Dashed: solved threshold.")
    if study.mixed_env:
        caption = (caption[:-1] + " of the panel's environment. Returns are " + NORM_TEXT
                   + ", as the variants run on different environments.")
    f = fs.Fig(study, "greedy return of every seed", out, nrows, ncols, width=4.2 * ncols + 0.8,
               height=3.2 * nrows, sharex=True, sharey=True, caption=caption)
    for ax, v in zip(f.axes, variants, strict=False):
        ev = study.evals[study.evals["variant"] == v]
        sc = scores[scores["variant"] == v].set_index("seed")
        for seed, g in ev.groupby("seed"):
            g = g.sort_values("env_step")
            bold = bool(sc["collapsed"].get(seed, False))
            ax.plot(g["env_step"], g["return"], color=colours[v], lw=1.5 if bold else 0.7,
                    alpha=0.9 if bold else 0.45)
            if "diverged" in g and g["diverged"].astype(bool).any():
                first = g[g["diverged"].astype(bool)].iloc[0]
                ax.plot(first["env_step"], first["return"], "x", color="#d62728", ms=7, mew=2)
        env = f" ({study.env_of(v)})" if study.mixed_env else ""
        ax.set_title(f"{fs.label(v, study.baseline)}{env}: {len(sc)} seeds, "
                     f"{int(sc['collapsed'].sum())} collapsed, {int(sc['diverged'].sum())} "
                     "diverged", fontsize=9.5)
        fs.threshold_line(ax, study, variants=[v])
        fs.steps_axis(ax)
        fs.span_returns(ax, study)
        ax.set_ylabel(fs.eval_label(study))
        ax.label_outer()
    for ax in f.axes[len(variants):]:
        ax.set_visible(False)
    return f.save("per_seed_curves")


def diagnostics(study: StudyResults, colours: dict[str, str], out: fs.Output,
                shown: set[str] | None) -> list[Path] | None:
    """Loss and mean Q of taken actions vs environment steps: the median over seeds per
    variant with a band from the 25th to the 75th percentile over seeds."""
    diag = study.diagnostics
    if diag is None or not {"loss", "q_mean", "env_step", "variant"} <= set(diag):
        warn(f"{study.name}: no diagnostics.csv, diagnostics.png skipped")
        return None
    variants = [v for v in study.variants if v in set(diag["variant"])]
    f = fs.Fig(study, "training diagnostics (median and interquartile range over seeds)", out,
               2, 1, height=6.0, sharex=True,
               caption="Each seed's mean over each logging interval; line: the median over "
                       "seeds, band: 25th to 75th percentile over seeds. NaN/inf values "
                       "(before learning starts, after a seed diverged) are left out. A "
                       "logarithmic axis is used when values span more than two decades."
                       + fs.highlight_caption(shown, len(variants)))
    labels = {"loss": "TD loss", "q_mean": "mean Q of taken actions"}
    for ax, col in zip(f.axes, labels, strict=True):
        plotted = [np.empty(0)]
        for v in sorted(variants, key=lambda v: shown is None or v in shown):
            d = diag.loc[diag["variant"] == v, ["env_step", col]]
            d = d.assign(**{col: d[col].where(np.isfinite(d[col]))}).dropna()
            q = d.groupby("env_step")[col].quantile([0.25, 0.5, 0.75]).unstack()  # (T, 3)
            if q.empty:
                continue
            if shown is not None and v not in shown:
                ax.plot(q.index, q[0.5].to_numpy(), color=fs.OTHERS_COLOUR, lw=0.8, zorder=1)
            else:
                ax.plot(q.index, q[0.5].to_numpy(), color=colours[v], lw=1.6,
                        label=fs.label(v, study.baseline))
                ax.fill_between(q.index, q[0.25].to_numpy(), q[0.75].to_numpy(),
                                color=colours[v], alpha=0.15, lw=0)
            plotted.append(q.to_numpy(dtype=float).ravel())
        fs.log_scale_if_wide(ax, np.concatenate(plotted))
        ax.set_ylabel(labels[col])
        fs.steps_axis(ax)
    if shown is not None:
        f.axes[0].plot([], [], color=fs.OTHERS_COLOUR, lw=0.8,
                       label=f"{len(variants) - len(shown & set(variants))} other variants")
    f.axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    f.axes[0].label_outer()
    return f.save("diagnostics")
