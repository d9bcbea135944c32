"""dqn.figures.plots: every figure is written, and the same CSVs give byte-identical PNGs."""

from __future__ import annotations

import json
import os

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from analysis_fixtures import make_study

from dqn.analysis.results import StudyResults
from dqn.analysis.results import load as load_results
from dqn.base import env_facts
from dqn.cli.main import main
from dqn.figures import plots
from dqn.figures import style as fs
from dqn.store.store import DamagedResults, StoreError

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


@pytest.mark.parametrize("damage", ["evals.csv", "diagnostics.csv", "run.json", "row"])
def test_damaged_results_stop_the_figures_and_write_nothing(tmp_path, damage):
    d = make_study(tmp_path, seeds=3, evals=4)
    if damage == "row":  # one number changed: the row count still matches, the digest not
        ev = pd.read_csv(d / "evals.csv")
        ev.loc[5, "return"] += 1
        ev.to_csv(d / "evals.csv", index=False)
    else:
        os.remove(d / damage)
    with pytest.raises(DamagedResults) as err:
        plots.make_figures(d, n_resamples=50)
    assert str(d) in str(err.value)
    assert not list(d.glob("*.png")) and not (d / "summary.csv").exists()


def test_unfinished_variant_is_drawn_and_flagged(tmp_path, capsys):
    d = make_study(tmp_path, seeds=3, evals=4)
    run = json.loads((d / "run.json").read_text())
    run["variants"]["no_target"]["seeds"] = [0, 1, 2, 3]  # chunk of seed 3 not trained yet
    (d / "run.json").write_text(json.dumps(run))
    names = {p.name for p in plots.make_figures(d, n_resamples=50)}
    assert names == {"summary.csv", *PNGS}
    assert "variant no_target: seeds [3] not trained yet" in capsys.readouterr().err
    assert not pd.read_csv(d / "summary.csv").set_index("variant").loc["no_target", "complete"]


def test_variant_colours_baseline_black_and_stable():
    c = fs.variant_colours(["base", "a", "b"], "base")
    assert c["base"] == fs.BASELINE_COLOUR
    assert len(set(c.values())) == 3
    assert fs.variant_colours(["base", "a", "b"], "base") == c


MIXED = {"baseline": "CartPole-v1", "v0": "CartPole-v0", "no_target": "CartPole-v0"}


def test_mixed_env_study_draws_every_figure_reproducibly(tmp_path):
    d = make_study(tmp_path, name="env_version", variants=tuple(MIXED), env_id=MIXED,
                   seeds=4, evals=6)
    written = plots.make_figures(d, n_resamples=200)
    assert sorted(p.name for p in written) == sorted(PNGS + ["summary.csv"])
    first = {name: (d / name).read_bytes() for name in PNGS + ["summary.csv"]}
    plots.make_figures(d, n_resamples=200)
    assert {name: (d / name).read_bytes() for name in first} == first


def _lines(study: StudyResults, **kw) -> list[tuple[float, str]]:
    fig, ax = plt.subplots()
    fs.threshold_line(ax, study, **kw)
    out = [(float(line.get_ydata()[0]), line.get_label()) for line in ax.lines]
    plt.close(fig)
    return out


@pytest.mark.filterwarnings("ignore:Precision loss")
def test_mixed_env_curves_are_normalised_with_a_threshold_line_per_env(tmp_path):
    d = make_study(tmp_path, name="env_version", variants=("baseline", "v0"),
                   env_id={"baseline": "CartPole-v1", "v0": "CartPole-v0"},
                   flat={"baseline": 475, "v0": 200}, seeds=2, evals=3)
    study = load_results(d)
    shown = fs.on_common_scale(study)
    assert shown.evals.groupby("variant")["return"].unique().to_dict() == {
        "baseline": [0.95], "v0": [1.0]}
    assert study.evals["return"].max() == 475  # the loaded study is left as it was
    assert fs.eval_label(study) == "greedy return, normalised to [0, 1] per environment"
    # 475/500 = 0.95 and 195/200 = 0.975 differ: both lines, and the caption says so
    assert _lines(study) == [(0.95, "CartPole-v1 solved (475 = 0.95)"),
                             (0.975, "CartPole-v0 solved (195 = 0.975)")]
    assert "they differ: CartPole-v1 475 = 0.95, CartPole-v0 195 = 0.975" in \
        fs.threshold_caption(study)
    assert _lines(study, variants=["v0"]) == [(0.975, "solved threshold (0.975 normalised)")]
    assert plots.make_figures(d, n_resamples=50)


def test_mixed_env_thresholds_that_coincide_draw_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(env_facts.ENVS, "CartPole-v0",
                        env_facts.EnvFacts("CartPole-v0", 200, 190.0, 0.0, 200.0, True))
    d = make_study(tmp_path, variants=("baseline", "v0"), seeds=2, evals=3,
                   env_id={"baseline": "CartPole-v1", "v0": "CartPole-v0"})
    study = load_results(d)
    assert _lines(study) == [(0.95, "solved threshold (0.95 normalised)")]
    assert "0.95 on the normalised scale in every environment" in \
        fs.threshold_caption(study)


def test_single_env_study_is_drawn_in_raw_returns(tmp_path):
    study = load_results(make_study(tmp_path, seeds=2, evals=3))
    assert fs.on_common_scale(study) is study
    assert fs.eval_label(study) == "greedy return"
    assert _lines(study) == [(475.0, "solved threshold (475)")]


def test_figures_of_a_folder_without_a_study_write_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    (results / "bench").mkdir(parents=True)
    (results / "bench" / "bench.csv").write_text("seeds,rate\n1,2\n")
    with pytest.raises(StoreError, match="no run.json or study CSVs"):
        plots.make_figures(results / "bench")
    for name in ("bench", "..", "."):
        assert main(["figures", name, "--out", str(results)]) == 2
        assert f"no results for study '{name}'" in capsys.readouterr().err
    assert not list(tmp_path.rglob("summary.csv"))


@pytest.mark.parametrize("n", [1, 3, 10, 11, 20, 21, 33, 60])
def test_palette_never_repeats_a_colour(n):
    colours = fs.palette(n)
    assert len(colours) == n and len(set(colours)) == n
    variants = ["base", *(f"v{i}" for i in range(n))]
    c = fs.variant_colours(variants, "base", first={"v3", "v5"})
    assert c["base"] == fs.BASELINE_COLOUR and len(set(c.values())) == n + 1


def test_highlighting_keeps_the_baseline_and_the_three_best_and_worst():
    variants = ["base", *(f"v{i}" for i in range(11))]
    iqm = {f"v{i}": float(i) for i in range(11)} | {"base": 99.0, "v4": float("nan")}
    assert fs.highlighted(variants[:fs.HIGHLIGHT_AT], "base", iqm) is None  # few: all shown
    assert fs.highlighted(variants, "base", iqm) == {"base", "v0", "v1", "v2", "v8", "v9",
                                                     "v10"}


def test_returns_axes_span_the_environments_return_range(tmp_path):
    study = load_results(make_study(tmp_path, seeds=2, evals=3))
    assert fs.return_range(study) == (0.0, 500.0)
    acrobot = load_results(make_study(tmp_path / "a", seeds=2, evals=3, env_id="Acrobot-v1"))
    assert fs.return_range(acrobot) == (-500.0, 0.0)
    mixed = load_results(make_study(tmp_path / "m", variants=tuple(MIXED), env_id=MIXED,
                                    seeds=2, evals=3))
    assert fs.return_range(mixed) == (0.0, 1.0)
    fig, ax = plt.subplots()
    fs.span_returns(ax, study, axis="x")
    assert ax.get_xlim() == (-15.0, 515.0)
    plt.close(fig)


def test_many_variants_are_drawn_with_the_others_in_grey(tmp_path):
    variants = ("baseline", *(f"v{i}" for i in range(11)))
    d = make_study(tmp_path, variants=variants, seeds=3, evals=4)
    written = plots.make_figures(d, n_resamples=50)
    assert sorted(p.name for p in written) == sorted(PNGS + ["summary.csv"])


def test_figures_export_as_pdf_and_svg_without_subtitles(tmp_path, capsys):
    d = make_study(tmp_path / "r", seeds=3, evals=4)
    code = main(["figures", d.name, "--out", str(d.parent), "--format", "pdf", "--format",
                 "svg", "--no-subtitle"])
    assert code == 0
    for name in plots.FIGURES:
        assert (d / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert b"<svg" in (d / f"{name}.svg").read_bytes()
    svg = (d / "learning_curves.svg").read_text()
    assert "learning curves" in svg  # the title is text
    question = load_results(d).question
    assert question and question.split()[0] not in svg  # no subtitle
    assert not list(d.glob("*.png"))
    # the same data give the same bytes (no dates in the files)
    plots.make_figures(d, n_resamples=200, formats=("pdf",), subtitle=False)
    pdf = (d / "final_scores.pdf").read_bytes()
    plots.make_figures(d, n_resamples=200, formats=("pdf",), subtitle=False)
    assert (d / "final_scores.pdf").read_bytes() == pdf
    plots.make_figures(d, n_resamples=200, formats=("svg",))
    assert question.split()[0] in (d / "learning_curves.svg").read_text()
    with pytest.raises(SystemExit) as exit_:
        main(["figures", d.name, "--out", str(d.parent), "--format", "jpg"])
    assert exit_.value.code == 2 and "invalid choice: 'jpg'" in capsys.readouterr().err


def test_summary_is_recomputed_only_when_its_data_change(tmp_path, monkeypatch):
    from dqn.analysis import cache

    d = make_study(tmp_path, seeds=4, evals=5)
    plots.make_figures(d, n_resamples=200)
    summary = (d / "summary.csv").read_bytes()
    assert (d / cache.SUMMARY_SOURCE).read_text().strip() == cache.fingerprint(d, 200)

    def no_summaries(*args, **kwargs):
        raise AssertionError("recomputed")
    monkeypatch.setattr(cache, "summarize", no_summaries)
    plots.make_figures(d, n_resamples=200)  # fingerprint matches: read, not recomputed
    with pytest.raises(AssertionError, match="recomputed"):
        plots.make_figures(d, n_resamples=300)  # another resample count is another summary
    monkeypatch.undo()
    (d / cache.SUMMARY_SOURCE).write_text("stale\n")  # recomputed: the same bytes
    plots.make_figures(d, n_resamples=200)
    assert (d / "summary.csv").read_bytes() == summary


def test_studies_drawn_in_parallel_give_the_same_bytes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    dirs = {k: [make_study(k, name=n, seeds=3, evals=4) for n in ("a", "b")]
            for k in (one, two)}
    serial = list(plots.draw_studies(dirs[one], jobs=1, n_resamples=200))
    parallel = list(plots.draw_studies(dirs[two], jobs=2, n_resamples=200))
    assert [e for *_, e in serial + parallel] == [None] * 4
    for a, b in zip(dirs[one], dirs[two], strict=True):
        for name in [*PNGS, "summary.csv"]:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_stale_summaries_are_refreshed_in_parallel_with_the_same_bytes(tmp_path):
    from dqn.analysis import cache

    dirs = [make_study(tmp_path, name=n, seeds=3, evals=4) for n in ("a", "b")]
    serial = {}
    for d in dirs:
        cache.cached_summary(d)
        serial[d] = (d / "summary.csv").read_bytes()
        (d / cache.SUMMARY_SOURCE).write_text("stale\n")
    assert not any(cache.is_current(d) for d in dirs)
    cache.refresh([*dirs, tmp_path / "no_study"], jobs=2)
    assert all(cache.is_current(d) for d in dirs)
    assert {d: (d / "summary.csv").read_bytes() for d in dirs} == serial
