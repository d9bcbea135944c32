"""`python -m dqn atlas` and `python -m dqn atlas-figures` (make atlas, make atlas-figures)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dqn.atlas import figure as atlas_figure
from dqn.atlas import forest as atlas_forest
from dqn.atlas import pooled as atlas_pooled
from dqn.atlas import spec as atlas_spec
from dqn.atlas import table as atlas_table
from dqn.figures.style import FORMATS
from dqn.run import atlas, runner
from dqn.run.ray_executor import DEFAULT_GPUS_PER_UNIT, DEFAULT_MAX_RETRIES


def _names(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("atlas", help="train what is missing of the atlas (atlas.toml), then "
                                     "write results/atlas/atlas.csv and its heatmap")
    p.add_argument("--recipes", help="comma-separated subset of atlas.toml's recipes")
    p.add_argument("--envs", help="comma-separated subset of atlas.toml's environments")
    p.add_argument("--ablations", help="comma-separated subset of atlas.toml's ablations")
    p.add_argument("--quick", action="store_true", help="smoke run (results/quick/atlas/)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--out", type=Path, help="the atlas's folder (default <results>/atlas)")
    p.add_argument("--atlas-file", type=Path, default=atlas_spec.ATLAS_FILE,
                   help="the atlas's plan (default %(default)s)")
    p.add_argument("--seed-chunk", type=int, metavar="N", help="seeds per unit of work")
    p.add_argument("--executor", choices=runner.EXECUTORS, default="local",
                   help="local (default) or ray, as for `study`")
    p.add_argument("--address", metavar="HOST:PORT", help="ray: the head's address")
    p.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES, metavar="N",
                   help="ray: extra attempts per unit (default %(default)s)")
    p.add_argument("--gpus-per-unit", type=float, default=DEFAULT_GPUS_PER_UNIT, metavar="F",
                   help="ray: GPU fraction per unit (default %(default)s)")

    p = sub.add_parser("atlas-figures", help="write results/atlas/atlas.csv and its heatmap "
                                             "from the columns' CSVs")
    p.add_argument("--out", type=Path, help="the atlas's folder (default <results>/atlas)")
    p.add_argument("--atlas-file", type=Path, default=atlas_spec.ATLAS_FILE,
                   help="the atlas's plan (default %(default)s)")
    p.add_argument("--format", action="append", choices=FORMATS, dest="formats",
                   help="file format, repeatable (default png)")


def _folder(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return args.out
    return args.results / ("quick" if getattr(args, "quick", False) else "") / "atlas"


def _figures(spec: atlas_spec.AtlasSpec, out: Path, formats: tuple[str, ...]) -> None:
    csv = atlas_table.write(spec, out)
    print(f"wrote {csv}")
    table = atlas_table.read(csv)
    for path in atlas_figure.draw(table, out, formats):
        print(f"wrote {path}")
    print(atlas_table.tally(table))
    pooled_csv = atlas_pooled.write(spec, out, table)
    if pooled_csv is not None:
        print(f"wrote {pooled_csv}")
        for path in atlas_forest.draw(atlas_pooled.read(pooled_csv), table, out, formats):
            print(f"wrote {path}")
    used = atlas_table.compute_used(spec, out)
    print(f"compute so far: {used['seed_steps'].sum() / 1e6:,.1f}M seed-steps, "
          f"{used['wall_time_s'].sum() / 3600:,.2f} h of unit wall time "
          f"({', '.join(sorted(set(','.join(used['devices']).split(',')) - {''})) or 'none'})")


def _atlas(args: argparse.Namespace) -> int:
    spec = atlas_spec.load(args.atlas_file)
    executor = runner.make_executor(args.executor, address=args.address,
                                    max_retries=args.max_retries,
                                    gpus_per_unit=args.gpus_per_unit)
    out = _folder(args)
    atlas.run(spec, out, recipes_=_names(args.recipes), envs=_names(args.envs),
              ablations=_names(args.ablations), quick=args.quick, device=args.device,
              executor=executor, seed_chunk=args.seed_chunk)
    _figures(spec, out, ("png",))
    return 0


def _atlas_figures(args: argparse.Namespace) -> int:
    spec = atlas_spec.load(args.atlas_file)
    _figures(spec, _folder(args), tuple(dict.fromkeys(args.formats or ["png"])))
    return 0


COMMANDS = {"atlas": _atlas, "atlas-figures": _atlas_figures}
