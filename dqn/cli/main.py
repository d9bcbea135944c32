"""`python -m dqn ...`: run studies, draw figures, write the report, list knobs."""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from pathlib import Path

from dqn.atlas.spec import AtlasError
from dqn.base.config import FIELDS, ConfigError, field_docs
from dqn.base.paths import RESULTS_DIR
from dqn.cli import atlas as atlas_cli
from dqn.cli import compare as compare_cli
from dqn.figures.plots import draw_studies
from dqn.figures.style import FORMATS
from dqn.report import findings
from dqn.report.export import FILENAME, export
from dqn.report.markdown import write_report
from dqn.run import adaptive, bench, play, recipes, runner, studyfile, sweep
from dqn.run.executors import ExecutorError, UnitsFailed
from dqn.run.play import PlayError
from dqn.run.ray_executor import DEFAULT_GPUS_PER_UNIT, DEFAULT_MAX_RETRIES
from dqn.store import weights
from dqn.store.store import StoreError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dqn", description=__doc__)
    parser.add_argument("--studies-dir", type=Path, metavar="DIR",
                        help="where study names are looked up (default $DQN_STUDIES_DIR, "
                             f"else {studyfile.STUDIES_DIR})")
    parser.add_argument("--results-dir", type=Path, metavar="DIR",
                        help="the results directory every command defaults to (default "
                             f"$DQN_RESULTS_DIR, else {RESULTS_DIR})")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("study", help="train every variant of a study over many seeds")
    p.add_argument("name", nargs="?", help="a study in studies/ (its name without .toml), or "
                   "the path of a study file anywhere (ending in .toml)")
    p.add_argument("--all", action="store_true", help="run every study in studies/")
    p.add_argument("--seeds", type=int, help="seeds per variant (default: the study's)")
    p.add_argument("--steps", type=int, help="environment steps per seed (total_steps)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--variants", help="comma-separated subset of variants")
    p.add_argument("--out", type=Path, help="results directory (default results/, "
                   "results/quick/ with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {studyfile.QUICK['seeds']} seeds, "
                        f"{studyfile.QUICK['total_steps']} steps")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides",
                   help="override a config key for every variant (repeatable; VALUE is read "
                        "as TOML: 3e-4, true, [128, 128]); results go to their own folder "
                        "<study>-<settings> unless --out is given")
    p.add_argument("--force", action="store_true", help="re-run finished variants too")
    p.add_argument("--adaptive", action="store_true",
                   help="train in stages, deciding each comparison group-sequentially and "
                        "giving seeds only to the open ones (default for a study file with "
                        "an [adaptive] table)")
    p.add_argument("--stage", type=int, metavar="N",
                   help="adaptive: seeds added per stage (default: the study's [adaptive] "
                        f"stage, else 10; {adaptive.QUICK_DESIGN['stage']} with --quick)")
    p.add_argument("--max-seeds", type=int, metavar="N",
                   help="adaptive: seeds per variant after which an open comparison is "
                        "inconclusive (default: the study's, else 100; "
                        f"{adaptive.QUICK_DESIGN['max_seeds']} with --quick)")
    p.add_argument("--no-figures", action="store_true", help="skip figures at the end")
    p.add_argument("--seed-chunk", type=int, metavar="N",
                   help="seeds per unit of work, each batched on one device (default: the "
                        "study's seed_chunk, else all seeds); changes no number, only how "
                        "much trains at once")
    p.add_argument("--executor", choices=runner.EXECUTORS, default="local",
                   help="local: train in this process (default); ray: every unit as a task "
                        "on a Ray cluster (pip install -e '.[ray]')")
    p.add_argument("--address", metavar="HOST:PORT",
                   help="ray: the head's address from `ray start --head` (default: "
                        "$RAY_ADDRESS, a cluster started on this machine, else a private one)")
    p.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES,
                   metavar="N", help="ray: extra attempts for a unit that raised or whose "
                                     "worker died (default %(default)s)")
    p.add_argument("--gpus-per-unit", type=float, default=DEFAULT_GPUS_PER_UNIT,
                   metavar="F", help="ray: GPU fraction per unit when the cluster has GPUs "
                                     "(default %(default)s)")

    p = sub.add_parser("sweep", help="a grid over config keys against the default agent, "
                                     "as a study in results/sweeps/")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                   help="values of one key (repeatable: the Cartesian product is swept)")
    p.add_argument("--name", help="the sweep's name (default: from the grid)")
    p.add_argument("--seeds", type=int, help="seeds per variant (default 20)")
    p.add_argument("--steps", type=int, help="environment steps per seed (total_steps)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides",
                   help="a config key for every variant, the baseline included")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--quick", action="store_true", help="smoke run (results/quick/sweeps/)")
    p.add_argument("--out", type=Path, help="results directory (default results/sweeps/)")
    p.add_argument("--no-figures", action="store_true", help="skip figures at the end")

    p = sub.add_parser("figures", help="redraw figures and summary.csv from the CSVs")
    p.add_argument("name", nargs="?", help="one study (default: every study with results)")
    p.add_argument("--out", type=Path, help="results directory (default: --results-dir)")
    p.add_argument("--format", action="append", choices=FORMATS, dest="formats",
                   help="file format, repeatable (default png; pdf and svg for papers)")
    p.add_argument("--no-subtitle", action="store_true",
                   help="leave out the study question under each title and the caption "
                        "below the axes (a paper's own caption replaces them)")

    p = sub.add_parser("report", help="write results/REPORT.md and docs/findings.md from the "
                                      "CSVs")
    p.add_argument("--out", type=Path, help="results directory (default: --results-dir)")
    p.add_argument("--findings", type=Path,
                   help=f"the findings page to write (default {findings.PAGE} for the "
                        "repository's own results; none for other results directories)")

    p = sub.add_parser("export", help="write a study's per-seed scores as rliable arrays (npz)")
    p.add_argument("name", help="a study with results")
    p.add_argument("--out", type=Path, help="results directory (default: --results-dir)")
    p.add_argument("--to", type=Path, help="the .npz to write (default "
                   f"<results>/<study>/{FILENAME})")

    p = sub.add_parser("play", help="render one greedy episode of a trained seed as a GIF")
    p.add_argument("name", help="a study with results (its folder under --results-dir)")
    p.add_argument("variant", help="one of the study's variants")
    p.add_argument("seed", type=int, help="one of the variant's finished seeds")
    p.add_argument("--out", type=Path, help="the GIF to write (default <results>/<study>/"
                   "weights/<variant>/seed-<seed>.gif)")
    p.add_argument("--retrain", action="store_true",
                   help="no weights kept for the seed: train it alone first (same numbers as "
                        "in its batch, checked against its recorded evaluations)")
    p.add_argument("--episode-seed", type=int, default=0, metavar="N",
                   help="the episode's start, gymnasium's reset(seed=N) (default 0)")
    p.add_argument("--every", type=int, default=2, metavar="N",
                   help="keep every N-th frame (default 2; the GIF still plays in real time)")
    p.add_argument("--scale", type=float, default=0.5, help="frame size (default 0.5)")

    sub.add_parser("list", help="list the studies and their questions")
    sub.add_parser("config", help="list every config key with its default and meaning")
    sub.add_parser("recipes", help="list the recipes (recipes/*.toml) a study can name")

    p = sub.add_parser("bench", help="measure seed-steps per second against the seed count")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--out", type=Path, help="default: <results-dir>/bench")
    p.add_argument("--tiny", action="store_true", help="a seconds-long run (for tests)")
    atlas_cli.add_parsers(sub)
    compare_cli.add_parsers(sub)

    args = parser.parse_args(argv)
    if args.studies_dir is not None:
        studyfile.STUDIES_DIR = args.studies_dir
    results = args.results_dir or RESULTS_DIR
    if args.command == "bench":
        args.out = args.out or results / "bench"
    elif args.command in ("figures", "report", "export"):
        args.out = args.out or results
    args.results = results
    try:
        return COMMANDS[args.command](args)
    except (studyfile.StudyError, ExecutorError, StoreError, PlayError,
            weights.WeightsError, recipes.RecipeError, AtlasError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except UnitsFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: finished units are saved; re-run to continue", file=sys.stderr)
        return 130


def _study(args: argparse.Namespace) -> int:
    if args.all:
        names = list(studyfile.available())
    elif not args.name:  # `make study` without NAME: what there is to run
        print(studyfile.listing(width=shutil.get_terminal_size().columns))
        return 0
    else:
        names = [args.name]
    chosen = [studyfile.find(n) for n in names]  # every study validated before any trains
    designs = [adaptive.design_for(s, adaptive=args.adaptive, stage=args.stage,
                                   max_seeds=args.max_seeds, quick=args.quick) for s in chosen]
    for s, design in zip(chosen, designs, strict=True):
        for flag, value in (("--seeds", args.seeds), ("--variants", args.variants)):
            if design is not None and value is not None:
                raise studyfile.StudyError(
                    f"command line: {flag} {value} cannot go with an adaptive run of "
                    f"{s.name} (it decides every variant as one family, with seed counts "
                    "chosen by its stages; see --stage and --max-seeds)")
    out = args.out or (args.results / "quick" if args.quick else args.results)
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    executor = runner.make_executor(args.executor, address=args.address,
                                    max_retries=args.max_retries,
                                    gpus_per_unit=args.gpus_per_unit)
    overrides = studyfile.parse_overrides(args.overrides)
    for s in chosen:  # every override checked against every study before any trains
        try:
            s.configs(steps=args.steps, quick=args.quick, overrides=overrides)
        except ConfigError as e:
            raise studyfile.StudyError(str(e)) from None
    for s, design in zip(chosen, designs, strict=True):
        print(f"[{s.name}] {s.question}")
        common = dict(out_dir=out, steps=args.steps, device=args.device, quick=args.quick,
                      force=args.force, figures=not args.no_figures,
                      seed_chunk=args.seed_chunk, executor=executor, overrides=overrides,
                      # other settings than the study file's never land in its own folder
                      settings_folder=args.out is None)
        path = (adaptive.run(s, design, **common) if design is not None else
                runner.run(s, seeds=args.seeds, variants=variants, **common))
        print(f"[{s.name}] results in {path}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    out = args.out or (args.results / "quick" / "sweeps" if args.quick else
                       args.results / "sweeps")
    study = sweep.make(args.grid, out, name=args.name, seeds=args.seeds,
                       base=studyfile.parse_overrides(args.overrides))
    print(f"[{study.name}] {study.question} ({len(study.variants) - 1} variants, "
          f"study file {study.path})")
    path = runner.run(study, out_dir=out, steps=args.steps, device=args.device,
                      quick=args.quick, figures=not args.no_figures)
    print(f"[{study.name}] results in {path}")
    return 0


def _figures(args: argparse.Namespace) -> int:
    if args.name:
        dirs = [args.out / args.name]
        if not (dirs[0] / "run.json").is_file() or Path(args.name).name != args.name:
            raise studyfile.StudyError(f"no results for study '{args.name}' under {args.out} "
                                       "(a study's folder holds run.json)")
    else:
        dirs = sorted(p.parent for p in args.out.glob("*/run.json"))
    if not dirs:
        print(f"no study results under {args.out}", file=sys.stderr)
        return 1
    damaged = []
    for d, written, error in draw_studies(dirs, tuple(dict.fromkeys(args.formats or ["png"])),
                                          subtitle=not args.no_subtitle):
        print(f"[{d.name}]")
        if error is not None:  # the other studies' figures are still drawn
            damaged.append(f"{d.name}: {error}")
        for path in written:
            print(f"  wrote {path}")
    if damaged:
        raise StoreError("figures not drawn for damaged results (re-run the study to repair "
                         "them): " + "\n".join(damaged))
    return 0


def _report(args: argparse.Namespace) -> int:
    print(f"wrote {write_report(args.out)}")
    page = args.findings or findings.default_page(args.out)
    if page is not None:
        written = findings.write_findings(args.out, page)
        print(f"wrote {written}" if written else
              f"{page} not written: no {args.out / 'atlas' / 'atlas.csv'}")
    return 0


def _export(args: argparse.Namespace) -> int:
    study_dir = args.out / args.name
    if not (study_dir / "run.json").exists():
        raise studyfile.StudyError(f"no results for study '{args.name}' under {args.out}")
    print(f"wrote {export(study_dir, args.to)}")
    return 0


def _play(args: argparse.Namespace) -> int:
    study_dir = args.results / args.name
    if args.every < 1 or not 0 < args.scale <= 4:
        raise PlayError(f"command line: --every {args.every} must be >= 1 and --scale "
                        f"{args.scale} in (0, 4]")
    try:
        sw = weights.load(study_dir, args.variant, args.seed)
    except weights.WeightsError:
        if not args.retrain:
            raise
        sw = play.retrain(study_dir, args.variant, args.seed)
    gif = args.out or play.default_gif(study_dir, args.variant, args.seed)
    ep = play.play(sw, gif, episode_seed=args.episode_seed, every=args.every, scale=args.scale)
    final = play.recorded_evals(study_dir, args.variant, args.seed)["return"].iloc[-1]
    print(f"{args.name}/{args.variant} seed {args.seed}: return {ep.ret:g} in {ep.steps} steps "
          f"(its final evaluation: {final:g}); wrote {gif}")
    return 0


def _list(args: argparse.Namespace) -> int:
    print(studyfile.listing(width=shutil.get_terminal_size().columns))
    return 0


def _config(args: argparse.Namespace) -> int:
    docs = field_docs()
    for name, f in FIELDS.items():
        print(f"{name:<26} {f.default!r:<14} {docs.get(name, '')}")
    return 0


def _recipes(args: argparse.Namespace) -> int:
    width = shutil.get_terminal_size().columns
    for name, path in recipes.available().items():
        r = recipes.load(path)
        print(textwrap.fill(f"{name:<15} {r.about}", max(width, 60), subsequent_indent=" " * 16))
    return 0


def _bench(args: argparse.Namespace) -> int:
    return bench.main(args.device, args.out, tiny=args.tiny)


COMMANDS = {"study": _study, "sweep": _sweep, "figures": _figures, "report": _report,
            "export": _export, "play": _play, "list": _list, "config": _config,
            "recipes": _recipes, "bench": _bench, **atlas_cli.COMMANDS,
            **compare_cli.COMMANDS}
