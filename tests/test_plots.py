"""dqn.plots: every figure is written, and the same CSVs give byte-identical PNGs."""

from __future__ import annotations

import os

from analysis_fixtures import make_study

from dqn import plots

PNGS = [f"{name}.png" for name in plots.FIGURES]


def test_make_figures_writes_every_figure_reproducibly(tmp_path):
    d = make_study(tmp_path, seeds=5, evals=8)
    written = plots.make_figures(d, n_resamples=200)
    assert sorted(p.name for p in written) == sorted(PNGS + ["summary.csv"])
    first = {}
    for name in PNGS:
        data = (d / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
        first[name] = data
    plots.make_figures(d, n_resamples=200)
    assert {name: (d / name).read_bytes() for name in PNGS} == first
    assert not list(d.glob("*.tmp"))


def test_missing_evals_skips_figures_with_a_warning(tmp_path, capsys):
    d = make_study(tmp_path, seeds=3, evals=4)
    os.remove(d / "evals.csv")
    assert [p.name for p in plots.make_figures(d, n_resamples=50)] == ["summary.csv"]
    err = capsys.readouterr().err
    assert "evals.csv missing" in err and "figures skipped" in err
    assert not list(d.glob("*.png"))


def test_missing_diagnostics_and_run_json_still_draw_the_rest(tmp_path, capsys):
    d = make_study(tmp_path, seeds=3, evals=4)
    os.remove(d / "diagnostics.csv")
    os.remove(d / "run.json")  # unknown env: no threshold, no normalised profile
    names = {p.name for p in plots.make_figures(d, n_resamples=50)}
    assert names == {"summary.csv", "learning_curves.png", "per_seed_curves.png",
                     "final_scores.png", "prob_improvement.png"}
    err = capsys.readouterr().err
    assert "diagnostics.png skipped" in err and "profile skipped" in err


def test_variant_colours_baseline_black_and_stable():
    c = plots.variant_colours(["base", "a", "b"], "base")
    assert c["base"] == plots.BASELINE_COLOUR
    assert len(set(c.values())) == 3
    assert plots.variant_colours(["base", "a", "b"], "base") == c
