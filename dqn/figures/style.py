"""What every study figure shares: the frame (title, question, caption), variant colours and
labels, the steps axis, solved-threshold lines and the common scale of mixed-environment studies.
"""

from __future__ import annotations

import math
import sys
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless and deterministic: no display, no interactive backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from dqn.analysis.results import StudyResults  # noqa: E402
from dqn.analysis.scoring import normalise  # noqa: E402
from dqn.base import env_facts  # noqa: E402
from dqn.store.tables import write_atomic  # noqa: E402

DPI = 110

BASELINE_COLOUR = "#000000"

STEPS_LABEL = "environment steps"

CI_TEXT = "95% percentile-bootstrap CI over seeds"

NORM_TEXT = "normalised to [0, 1] per environment"

THRESHOLD_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))


def warn(msg: str) -> None:
    """Print a warning to stderr (figures are made from the CLI, where this is visible)."""
    print(f"warning: {msg}", file=sys.stderr)


FORMATS = ("png", "pdf", "svg")
"""The file formats figures can be written in (`figures --format`)."""

HIGHLIGHT_AT = 10
"""Above this many variants, curves highlight the baseline and the best and worst variants."""
HIGHLIGHTED = 3
"""How many of the best and of the worst variants (by final-score IQM) keep their colour."""
OTHERS_COLOUR = "#b0b0b0"


@dataclass(frozen=True)
class Output:
    """Where a study's figures go and how: <folder>/<figure>.<format> for every format;
    `subtitle` False drops the study question under the title and the caption below the
    axes (for export, where a paper's own caption replaces them)."""

    folder: Path
    formats: tuple[str, ...] = ("png",)
    subtitle: bool = True


def palette(n: int, hues: bool = False) -> list[str]:
    """n distinct colours, none repeated: seaborn's colourblind palette up to 10, tab20 up to
    20, then (or with `hues`) n evenly spaced HUSL hues, taken in a stride so that neighbours
    in study order differ."""
    if n <= 10 and not hues:
        return sns.color_palette("colorblind", max(n, 1)).as_hex()[:n]
    if n <= 20 and not hues:
        return sns.color_palette("tab20", 20).as_hex()[:n]
    spread = sns.color_palette("husl", max(n, 1)).as_hex()
    stride = next(k for k in (7, 5, 3, 11, 13, 1) if math.gcd(k, n) == 1)
    return [spread[(i * stride) % n] for i in range(n)]


def variant_colours(variants: list[str], baseline: str | None,
                    first: set[str] | None = None) -> dict[str, str]:
    """Baseline black, the others distinct colours in study order (the same in every figure).
    The variants in `first` (the highlighted ones, `highlighted`) take the colourblind
    palette and the rest HUSL hues, so the few drawn in colour differ most."""
    others = [v for v in variants if v != baseline]
    if first is None:
        colours = dict(zip(others, palette(len(others)), strict=True))
    else:
        lead = [v for v in others if v in first]
        rest = [v for v in others if v not in first]
        colours = dict(zip(lead + rest, palette(len(lead)) + palette(len(rest), hues=True),
                           strict=True))
    if baseline is not None:
        colours[baseline] = BASELINE_COLOUR
    return colours


def highlighted(variants: list[str], baseline: str | None,
                final_iqm: dict[str, float]) -> set[str] | None:
    """The variants that keep their colour when there are more than HIGHLIGHT_AT: the
    baseline and the HIGHLIGHTED best and worst by final-score IQM. None: every variant."""
    if len(variants) <= HIGHLIGHT_AT:
        return None
    scored = [v for v in variants if v != baseline and np.isfinite(final_iqm.get(v, np.nan))]
    ranked = sorted(scored, key=lambda v: final_iqm[v])
    return {baseline, *ranked[:HIGHLIGHTED], *ranked[-HIGHLIGHTED:]} - {None}


def highlight_caption(shown: set[str] | None, n: int) -> str:
    if shown is None:
        return ""
    return (f" With {n} variants, the baseline and the {HIGHLIGHTED} best and {HIGHLIGHTED} "
            "worst by final-score IQM are in colour; the others are thin grey lines without "
            "bands (every variant in colour: final_scores and summary.csv).")


def return_range(study: StudyResults) -> tuple[float, float] | None:
    """The axis limits of returns: the environment's whole return range (0 to 1 when they are
    normalised), so figures of different studies compare by eye; None for an unknown env."""
    if study.mixed_env:
        return 0.0, 1.0
    spec = env_facts.known(study.env_id)
    return None if spec is None else (spec.min_return, spec.max_return)


def span_returns(ax: plt.Axes, study: StudyResults, axis: str = "y") -> None:
    """Set the returns axis to the environment's return range, with a 3% margin."""
    r = return_range(study)
    if r is None:
        return
    pad = 0.03 * (r[1] - r[0])
    (ax.set_ylim if axis == "y" else ax.set_xlim)(r[0] - pad, r[1] + pad)


def label(v: str, baseline: str | None) -> str:
    # A variant literally named "baseline" needs no "(baseline)" tag.
    return f"{v} (baseline)" if v == baseline and v != "baseline" else v


class Fig:
    """A figure with a bold title, the study question under it and a caption at the bottom
    (question and caption only when `out.subtitle`)."""

    def __init__(self, study: StudyResults, what: str, out: Output, nrows: int = 1,
                 ncols: int = 1, width: float = 9.0, height: float = 4.5, caption: str = "",
                 **kw) -> None:
        self.out = out
        q = (textwrap.wrap(study.question, int(width * 15))
             if study.question and out.subtitle else [])
        cap = textwrap.wrap(caption, int(width * 17)) if caption and out.subtitle else []
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

    def save(self, name: str) -> list[Path]:
        """Write <folder>/<name>.<format> for every format of the output; returns them."""
        self.fig.tight_layout(rect=(0, self.bottom / self.total, 1, 1 - self.top / self.total))
        paths = []
        for fmt in self.out.formats:
            paths.append(savefig(self.fig, self.out.folder / f"{name}.{fmt}", fmt))
        plt.close(self.fig)
        return paths


def savefig(fig: plt.Figure, path: Path, fmt: str) -> Path:
    """Write one figure atomically, reproducibly: no dates or version stamps in the file
    (same data, same bytes); text stays text (editable, searchable) and PDFs use TrueType
    fonts, which publishers ask for (Type 3 is matplotlib's default)."""
    with plt.rc_context({"svg.hashsalt": "dqn-ablations", "svg.fonttype": "none",
                         "pdf.fonttype": 42}):
        return write_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=DPI,
                                                          metadata=_METADATA[fmt]))


_METADATA: dict[str, dict[str, None]] = {
    "png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None}}


def steps_axis(ax: plt.Axes) -> None:
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel(STEPS_LABEL)
    ax.set_xlim(left=0)  # same origin in every figure, so "nothing logged yet" is visible


def on_common_scale(study: StudyResults) -> StudyResults:
    """The study with each variant's eval returns normalised by its own env when envs differ.

    Single-environment studies come back unchanged, so their figures stay in raw returns.
    """
    if not study.mixed_env or study.evals is None:
        return study
    ev = study.evals.copy()
    for v, rows in ev.groupby("variant", sort=False).groups.items():
        ev.loc[rows, "return"] = normalise(ev.loc[rows, "return"], study.env_of(v))
    return replace(study, evals=ev)


def thresholds(study: StudyResults, variants: list[str]) -> list[tuple[str, float, float]]:
    """(env, threshold, normalised threshold) of each distinct known env of `variants`."""
    envs = dict.fromkeys(study.env_of(v) for v in variants)
    return [(env, spec.threshold, float(normalise(spec.threshold, env)))
            for env in envs if (spec := env_facts.known(env)) is not None and spec.solvable]


def threshold_line(ax: plt.Axes, study: StudyResults, vertical: bool = False,
                   normalised: bool = False, variants: list[str] | None = None) -> None:
    line = ax.axvline if vertical else ax.axhline
    if not study.mixed_env:
        spec = env_facts.known(study.env_id)
        if spec is None or not spec.solvable:
            return
        x = float(normalise(spec.threshold, study.env_id)) if normalised else spec.threshold
        line(x, color="0.45", ls="--", lw=1, label=f"solved threshold ({spec.threshold:g})",
             zorder=1)
        return
    # Mixed environments: every line is on the normalised scale; one line when they coincide.
    found = thresholds(study, present(study) if variants is None else variants)
    if len({x for _, _, x in found}) == 1:
        line(found[0][2], color="0.45", ls="--", lw=1,
             label=f"solved threshold ({found[0][2]:.3g} normalised)", zorder=1)
        return
    for i, (env, raw, x) in enumerate(found):
        line(x, color="0.45", ls=THRESHOLD_STYLES[i % len(THRESHOLD_STYLES)], lw=1,
             label=f"{env} solved ({raw:g} = {x:.3g})", zorder=1)


def threshold_caption(study: StudyResults) -> str:
    """For mixed-env studies: which solved-threshold lines are drawn (they may not coincide)."""
    found = thresholds(study, present(study))
    if not found:
        return " No solved threshold is drawn: no environment with a known threshold."
    if len({x for _, _, x in found}) == 1:
        return (f" Dashed: the solved threshold, {found[0][2]:.3g} on the normalised scale "
                "in every environment.")
    each = ", ".join(f"{env} {raw:g} = {x:.3g}" for env, raw, x in found)
    return (" Grey lines: each environment's solved threshold on the normalised scale (they "
            f"differ: {each}).")


def eval_label(study: StudyResults) -> str:
    k = None
    for info in study.variant_runs().values():
        k = info.get("config", {}).get("eval_episodes", k)
    label = f"greedy return (mean of {k} eval episodes)" if k else "greedy return"
    return f"{label}, {NORM_TEXT}" if study.mixed_env else label


def present(study: StudyResults) -> list[str]:
    have = set(study.evals["variant"]) if study.evals is not None else set()
    return [v for v in study.variants if v in have]


def variant_rows(ax: plt.Axes, variants: list[str], baseline: str | None) -> None:
    ax.set_yticks(range(len(variants)), [label(v, baseline) for v in variants])
    ax.set_ylim(len(variants) - 0.5, -0.5)  # study order from top to bottom
    for tick, v in zip(ax.get_yticklabels(), variants, strict=True):
        tick.set_fontweight("bold" if v == baseline else "normal")


def log_scale_if_wide(ax: plt.Axes, values: np.ndarray) -> None:
    values = values[np.isfinite(values)]
    nonzero = np.abs(values[values != 0])
    if nonzero.size == 0 or nonzero.max() / nonzero.min() <= 100:
        return
    if values.min() > 0:
        ax.set_yscale("log")
    else:
        # Negative values rule out a log axis; symlog keeps them while still showing decades.
        ax.set_yscale("symlog", linthresh=float(np.percentile(nonzero, 10)))
