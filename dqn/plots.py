"""The six figures of a study, written next to its CSVs (deterministic PNGs, no torch).

Every figure is titled with the study's name and question, colours one variant the same way in
all figures (baseline black), and uses the metric names of `dqn.stats`. When the variants run on
different environments, returns are drawn normalised to [0, 1] per environment (`_on_common_scale`).
"""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless and deterministic: no display, no interactive backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from dqn import stats  # noqa: E402

FIGURES = ("learning_curves", "per_seed_curves", "final_scores", "prob_improvement",
           "diagnostics", "performance_profile")
DPI = 110
BASELINE_COLOUR = "#000000"
STEPS_LABEL = "environment steps"
CI_TEXT = "95% percentile-bootstrap CI over seeds"
NORM_TEXT = "normalised to [0, 1] per environment"
THRESHOLD_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))


def warn(msg: str) -> None:
    """Print a warning to stderr (figures are made from the CLI, where this is visible)."""
    print(f"warning: {msg}", file=sys.stderr)


def variant_colours(variants: list[str], baseline: str | None) -> dict[str, str]:
    """Baseline black, the others the colourblind palette in study order (same in every figure)."""
    palette = sns.color_palette("colorblind", max(1, len(variants))).as_hex()
    others = [v for v in variants if v != baseline]
    colours = {v: palette[i % len(palette)] for i, v in enumerate(others)}
    if baseline is not None:
        colours[baseline] = BASELINE_COLOUR
    return colours


def _label(v: str, baseline: str | None) -> str:
    # A variant literally named "baseline" needs no "(baseline)" tag.
    return f"{v} (baseline)" if v == baseline and v != "baseline" else v


class _Fig:
    """A figure with a bold title, the study question under it and a caption at the bottom."""

    def __init__(self, study: stats.Study, what: str, nrows: int = 1, ncols: int = 1,
                 width: float = 9.0, height: float = 4.5, caption: str = "", **kw) -> None:
        q = textwrap.wrap(study.question, int(width * 15)) if study.question else []
        cap = textwrap.wrap(caption, int(width * 17)) if caption else []
        self.top = 0.45 + 0.16 * len(q)
        self.bottom = 0.1 + 0.15 * len(cap)
        total = height + self.top + self.bottom
        self.fig, axes = plt.subplots(nrows, ncols, figsize=(width, total), squeeze=False, **kw)
        self.axes = axes.ravel()
        self.fig.text(0.5, 1 - 0.1 / total, f"{study.name}: {what}", ha="center", va="top",
                      fontsize=12.5, fontweight="bold")
        if q:
            self.fig.text(0.5, 1 - 0.4 / total, "\n".join(q), ha="center", va="top",
                          fontsize=8.5, color="0.3")
        if cap:
            self.fig.text(0.01, 0.06 / total, "\n".join(cap), ha="left", va="bottom",
                          fontsize=7.5, color="0.35")
        self.total = total

    def save(self, path: Path) -> Path:
        self.fig.tight_layout(rect=(0, self.bottom / self.total, 1, 1 - self.top / self.total))
        # Software=None drops the matplotlib version stamp, so same data -> same bytes.
        stats.write_atomic(path, lambda tmp: self.fig.savefig(
            tmp, format="png", dpi=DPI, metadata={"Software": None}))
        plt.close(self.fig)
        return path


def _steps_axis(ax: plt.Axes) -> None:
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel(STEPS_LABEL)
    ax.set_xlim(left=0)  # same origin in every figure, so "nothing logged yet" is visible


def _on_common_scale(study: stats.Study) -> stats.Study:
    """The study with each variant's eval returns normalised by its own env when envs differ.

    Single-environment studies come back unchanged, so their figures stay in raw returns.
    """
    if not study.mixed_env or study.evals is None:
        return study
    ev = study.evals.copy()
    for v, rows in ev.groupby("variant", sort=False).groups.items():
        ev.loc[rows, "return"] = stats.normalise(ev.loc[rows, "return"], study.env_of(v))
    return replace(study, evals=ev)


def _thresholds(study: stats.Study, variants: list[str]) -> list[tuple[str, float, float]]:
    """(env, threshold, normalised threshold) of each distinct known env of `variants`."""
    envs = dict.fromkeys(study.env_of(v) for v in variants)
    return [(env, spec.threshold, float(stats.normalise(spec.threshold, env)))
            for env in envs if (spec := stats.ENVS.get(env or "")) is not None]


def _threshold_line(ax: plt.Axes, study: stats.Study, vertical: bool = False,
                    normalised: bool = False, variants: list[str] | None = None) -> None:
    line = ax.axvline if vertical else ax.axhline
    if not study.mixed_env:
        spec = stats.ENVS.get(study.env_id or "")
        if spec is None:
            return
        x = float(stats.normalise(spec.threshold, study.env_id)) if normalised else spec.threshold
        line(x, color="0.45", ls="--", lw=1, label=f"solved threshold ({spec.threshold:g})",
             zorder=1)
        return
    # Mixed environments: every line is on the normalised scale; one line when they coincide.
    found = _thresholds(study, _present(study) if variants is None else variants)
    if len({x for _, _, x in found}) == 1:
        line(found[0][2], color="0.45", ls="--", lw=1,
             label=f"solved threshold ({found[0][2]:.3g} normalised)", zorder=1)
        return
    for i, (env, raw, x) in enumerate(found):
        line(x, color="0.45", ls=THRESHOLD_STYLES[i % len(THRESHOLD_STYLES)], lw=1,
             label=f"{env} solved ({raw:g} = {x:.3g})", zorder=1)


def _threshold_caption(study: stats.Study) -> str:
    """For mixed-env studies: which solved-threshold lines are drawn (they may not coincide)."""
    found = _thresholds(study, _present(study))
    if not found:
        return " No solved threshold is drawn: no environment with a known threshold."
    if len({x for _, _, x in found}) == 1:
        return (f" Dashed: the solved threshold, {found[0][2]:.3g} on the normalised scale "
                "in every environment.")
    each = ", ".join(f"{env} {raw:g} = {x:.3g}" for env, raw, x in found)
    return (" Grey lines: each environment's solved threshold on the normalised scale (they "
            f"differ: {each}).")


def _eval_label(study: stats.Study) -> str:
    k = None
    for info in ((study.run or {}).get("variants") or {}).values():
        k = info.get("config", {}).get("eval_episodes", k)
    label = f"greedy return (mean of {k} eval episodes)" if k else "greedy return"
    return f"{label}, {NORM_TEXT}" if study.mixed_env else label


def learning_curves(study: stats.Study, colours: dict[str, str], path: Path,
                    n_resamples: int) -> Path:
    """IQM greedy return vs environment steps per variant with a bootstrap band."""
    caption = f"Line: IQM over seeds at each evaluation; band: {CI_TEXT}."
    if study.mixed_env:
        caption += (f" The variants run on different environments: returns are {NORM_TEXT} "
                    "((return - min) / (max - min))." + _threshold_caption(study))
    f = _Fig(study, "learning curves (IQM of greedy evaluation return)", caption=caption)
    ax = f.axes[0]
    for v in _present(study):
        ev = study.evals[study.evals["variant"] == v]
        steps, mid, lo, hi = [], [], [], []
        for step, g in ev.groupby("env_step"):
            r = stats._finite(g["return"])
            if r.size == 0:
                continue
            a, b = stats.bootstrap_ci(r, stats.iqm, n_resamples=n_resamples)
            steps.append(step)
            mid.append(float(stats.iqm(r)))
            lo.append(a)
            hi.append(b)
        n = ev["seed"].nunique()
        ax.plot(steps, mid, color=colours[v], lw=2 if v == study.baseline else 1.6,
                label=f"{_label(v, study.baseline)}, {n} seeds")
        ax.fill_between(steps, lo, hi, color=colours[v], alpha=0.15, lw=0)
    _threshold_line(ax, study)
    _steps_axis(ax)
    ax.set_ylabel(_eval_label(study))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return f.save(path)


def _present(study: stats.Study) -> list[str]:
    have = set(study.evals["variant"]) if study.evals is not None else set()
    return [v for v in study.variants if v in have]


def per_seed_curves(study: stats.Study, colours: dict[str, str], path: Path,
                    scores: pd.DataFrame) -> Path:
    """One thin line per seed, one panel per variant, collapsed seeds drawn bold."""
    variants = _present(study)
    ncols = min(3, len(variants))
    nrows = math.ceil(len(variants) / ncols)
    caption = ("Thin lines: one seed each. Bold: seeds that collapsed (reached the solved "
               "threshold, then fell below half of it). x: first evaluation after the seed's "
               "loss diverged (NaN/inf). Dashed: solved threshold.")
    if study.mixed_env:
        caption = (caption[:-1] + " of the panel's environment. Returns are " + NORM_TEXT
                   + ", as the variants run on different environments.")
    f = _Fig(study, "greedy return of every seed", nrows, ncols, width=4.2 * ncols + 0.8,
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
        ax.set_title(f"{_label(v, study.baseline)}{env}: {len(sc)} seeds, "
                     f"{int(sc['collapsed'].sum())} collapsed, {int(sc['diverged'].sum())} "
                     "diverged", fontsize=9.5)
        _threshold_line(ax, study, variants=[v])
        _steps_axis(ax)
        ax.set_ylabel(_eval_label(study))
        ax.label_outer()
    for ax in f.axes[len(variants):]:
        ax.set_visible(False)
    return f.save(path)


def _rows(ax: plt.Axes, variants: list[str], baseline: str | None) -> None:
    ax.set_yticks(range(len(variants)), [_label(v, baseline) for v in variants])
    ax.set_ylim(len(variants) - 0.5, -0.5)  # study order from top to bottom
    for tick, v in zip(ax.get_yticklabels(), variants, strict=True):
        tick.set_fontweight("bold" if v == baseline else "normal")


def final_scores(study: stats.Study, colours: dict[str, str], path: Path,
                 scores: pd.DataFrame, summary: pd.DataFrame, k: int) -> Path:
    """Final-score IQM and CI per variant, every seed as a dot, and the solved threshold."""
    rows = summary[summary["seeds"] > 0].reset_index(drop=True)
    # Mixed environments: seeds and IQMs on the normalised scale (raw returns don't compare).
    col = "final_norm" if study.mixed_env else "final"
    norm = (f", {NORM_TEXT} (the variants run on different environments)"
            if study.mixed_env else "")
    f = _Fig(study, "final score per variant", height=0.6 * len(rows) + 1.6,
             caption=f"Final score: mean greedy return over each seed's last {k} evaluations"
                     f"{norm}. Large dot and bar: IQM with its {CI_TEXT}; small dots: single "
                     "seeds. Right: seeds whose final score reaches the solved threshold"
                     + (" of their own environment." + _threshold_caption(study)
                        if study.mixed_env else "."))
    ax = f.axes[0]
    jitter = np.random.default_rng(stats.SEED)
    for i, r in rows.iterrows():
        v = r["variant"]
        x = scores.loc[scores["variant"] == v, col].to_numpy(dtype=float)
        ax.scatter(x, i + jitter.uniform(-0.18, 0.18, x.size), s=12, color=colours[v],
                   alpha=0.35, lw=0, label="one seed" if i == 0 else None)
        ax.plot([r[f"{col}_iqm_lo"], r[f"{col}_iqm_hi"]], [i, i], color=colours[v], lw=3.5,
                solid_capstyle="butt")
        ax.plot(r[f"{col}_iqm"], i, "o", color=colours[v], ms=9, mec="white",
                label="IQM with 95% CI" if i == 0 else None)
        if not math.isnan(r["solved_fraction"]):
            solved = round(r["solved_fraction"] * r["seeds"])
            ax.text(1.01, i, f"solved {solved}/{r['seeds']}", transform=ax.get_yaxis_transform(),
                    va="center", fontsize=8.5)
    _rows(ax, list(rows["variant"]), study.baseline)
    _threshold_line(ax, study, vertical=True)
    ax.set_xlabel(f"final score: {_eval_label(study)}")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, frameon=False, fontsize=8.5)
    return f.save(path)


def prob_improvement(study: stats.Study, colours: dict[str, str], path: Path,
                     summary: pd.DataFrame) -> Path:
    """P(variant's final score > baseline's) with its CI and verdict, against 0.5."""
    rows = summary[(summary["variant"] != study.baseline) & (summary["seeds"] > 0)]
    rows = rows.reset_index(drop=True)
    score = "normalised final score" if study.mixed_env else "final score"
    norm = (f" (final score {NORM_TEXT}, as the variants run on different environments)"
            if study.mixed_env else "")
    f = _Fig(study, f"probability of improvement over {study.baseline}",
             height=0.6 * max(1, len(rows)) + 1.4,
             caption="P(improvement): chance that a random seed of the variant gets a higher "
                     f"{score} than a random seed of the baseline{norm} (ties count 1/2); bar: "
                     f"{CI_TEXT}. Verdict: better/worse when the whole CI is above/below 0.5.")
    ax = f.axes[0]
    for i, r in rows.iterrows():
        v = r["variant"]
        ax.plot([r["p_improvement_lo"], r["p_improvement_hi"]], [i, i], color=colours[v],
                lw=3.5, solid_capstyle="butt")
        ax.plot(r["p_improvement"], i, "o", color=colours[v], ms=9, mec="white")
        ax.text(1.01, i, r["verdict"], transform=ax.get_yaxis_transform(), va="center",
                fontsize=8.5)
    if rows.empty:
        ax.text(0.5, 0.5, "no variant to compare with the baseline", ha="center",
                transform=ax.transAxes)
    _rows(ax, list(rows["variant"]), study.baseline)
    ax.axvline(0.5, color="0.45", ls="--", lw=1, label="0.5: no difference")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"P({score} of variant > {score} of {study.baseline})")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, fontsize=8.5)
    return f.save(path)


def _scale(ax: plt.Axes, values: np.ndarray) -> None:
    values = values[np.isfinite(values)]
    nonzero = np.abs(values[values != 0])
    if nonzero.size == 0 or nonzero.max() / nonzero.min() <= 100:
        return
    if values.min() > 0:
        ax.set_yscale("log")
    else:
        # Negative values rule out a log axis; symlog keeps them while still showing decades.
        ax.set_yscale("symlog", linthresh=float(np.percentile(nonzero, 10)))


def diagnostics(study: stats.Study, colours: dict[str, str], path: Path) -> Path | None:
    """Loss and mean Q of taken actions vs environment steps, mean over seeds per variant."""
    diag = study.diagnostics
    if diag is None or not {"loss", "q_mean", "env_step", "variant"} <= set(diag):
        warn(f"{study.name}: no diagnostics.csv, diagnostics.png skipped")
        return None
    f = _Fig(study, "training diagnostics (mean over seeds)", 2, 1, height=6.0, sharex=True,
             caption="Means over each logging interval, then over seeds; NaN/inf values "
                     "(before learning starts, after a seed diverged) are left out. A "
                     "logarithmic axis is used when values span more than two decades.")
    labels = {"loss": "TD loss", "q_mean": "mean Q of taken actions"}
    for ax, col in zip(f.axes, labels, strict=True):
        plotted = [np.empty(0)]
        for v in [v for v in study.variants if v in set(diag["variant"])]:
            d = diag.loc[diag["variant"] == v, ["env_step", col]]
            d = d.assign(**{col: d[col].where(np.isfinite(d[col]))})
            m = d.groupby("env_step")[col].mean().dropna()
            ax.plot(m.index, m.to_numpy(), color=colours[v], lw=1.6,
                    label=_label(v, study.baseline))
            plotted.append(m.to_numpy(dtype=float))
        _scale(ax, np.concatenate(plotted))
        ax.set_ylabel(labels[col])
        _steps_axis(ax)
    f.axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    f.axes[0].label_outer()
    return f.save(path)


def performance_profile(study: stats.Study, colours: dict[str, str], path: Path,
                        scores: pd.DataFrame) -> Path | None:
    """Fraction of seeds whose normalised final score exceeds tau, tau in [0, 1]."""
    known = [v for v in _present(study) if study.env_of(v) in stats.ENVS]
    if not known:
        envs = study.env_id if not study.mixed_env else sorted(set(study.env_ids.values()))
        warn(f"{study.name}: no return range for env {envs!r}, profile skipped")
        return None
    if study.mixed_env:
        groups: dict[str, list[str]] = {}
        for v in known:
            groups.setdefault(study.env_of(v), []).append(v)
        about = "each variant's own environment's min and max: " + ", ".join(
            f"{env} {stats.ENVS[env].min_return:g} to {stats.ENVS[env].max_return:g} "
            f"({', '.join(vs)})" for env, vs in groups.items())
    else:
        spec = stats.ENVS[study.env_id]
        about = f"{study.env_id}'s min {spec.min_return:g} and max {spec.max_return:g}"
    f = _Fig(study, "performance profile of final scores",
             caption=f"Normalised final score: (return - min) / (max - min), with {about}. "
                     "A curve further up and right is better; it drops where seeds stop "
                     "scoring above τ." + (_threshold_caption(study) if study.mixed_env else ""))
    ax = f.axes[0]
    tau = np.linspace(0, 1, 201)
    for v in known:
        x = stats._finite(scores.loc[scores["variant"] == v, "final_norm"])
        ax.plot(tau, (x[None, :] > tau[:, None]).mean(axis=1), color=colours[v], lw=1.8,
                drawstyle="steps-post", label=f"{_label(v, study.baseline)}, {x.size} seeds")
    _threshold_line(ax, study, vertical=True, normalised=True)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ: normalised final score (0 = minimum return, 1 = maximum return)")
    ax.set_ylabel("fraction of seeds with score > τ")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return f.save(path)


def make_figures(study_dir: Path, k: int = 3,
                 n_resamples: int = stats.N_RESAMPLES) -> list[Path]:
    """Write summary.csv and the six PNGs of results/<study>/; return the files written.

    Gaps in the data are printed as warnings and the figures that need the missing part are
    skipped, so an incomplete study still gets whatever can be drawn.
    """
    study_dir = Path(study_dir)
    study = stats.load_study(study_dir)
    for reason in study.incomplete:
        warn(f"{study.name}: {reason}")
    scores = stats.study_scores(study, k)
    summary = stats.summarize_scores(scores, study.variants, study.baseline, study.envs,
                                     study.incomplete_variants, n_resamples)
    written = [stats.write_summary(study_dir, k, summary=summary)]
    if study.evals is None or not _present(study):
        warn(f"{study.name}: no evaluations, figures skipped")
        return written
    colours = variant_colours(study.variants, study.baseline)
    out = {name: study_dir / f"{name}.png" for name in FIGURES}
    shown = _on_common_scale(study)  # eval returns as the curves draw them
    makers: list[Callable[[], Path | None]] = [
        lambda: learning_curves(shown, colours, out["learning_curves"], n_resamples),
        lambda: per_seed_curves(shown, colours, out["per_seed_curves"], scores),
        lambda: final_scores(study, colours, out["final_scores"], scores, summary, k),
        lambda: prob_improvement(study, colours, out["prob_improvement"], summary),
        lambda: diagnostics(study, colours, out["diagnostics"]),
        lambda: performance_profile(study, colours, out["performance_profile"], scores),
    ]
    with sns.axes_style("whitegrid"), plt.rc_context({"axes.titlesize": 10}):
        for make in makers:
            path = make()
            if path is not None:
                written.append(path)
    return written
