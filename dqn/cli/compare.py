"""`python -m dqn compare OLD NEW`: did learning change between two trainings of a study?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dqn.analysis import regression
from dqn.store.reproduce import compare


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="paired-by-seed non-inferiority of a new training "
                       "against an old one of the same study (after a change of numerics)")
    p.add_argument("old", help="the old results: a study folder (with run.json), or a study "
                   "name for its folder under --results-dir (the committed results)")
    p.add_argument("new", type=Path, help="the new results: a study folder")
    p.add_argument("--margin", type=float, default=regression.MARGIN,
                   help="largest tolerated loss on the normalised 0-1 scale (default "
                        f"{regression.MARGIN:g})")
    p.add_argument("--alpha", type=float, default=regression.ALPHA,
                   help=f"familywise error rate over the table (default {regression.ALPHA:g})")


def _folder(name: str, results: Path) -> Path:
    path = Path(name)
    return path if (path / "run.json").is_file() else results / name


def _compare(args: argparse.Namespace) -> int:
    old, new = _folder(args.old, args.results), Path(args.new)
    for path in (old, new):
        if not (path / "run.json").is_file():
            print(f"error: {path}: no run.json (not a study's results folder)", file=sys.stderr)
            return 2
    if not 0 < args.margin < 1 or not 0 < args.alpha < 1:
        print(f"error: --margin {args.margin} and --alpha {args.alpha} must lie in (0, 1)",
              file=sys.stderr)
        return 2
    exact = compare(new, old)
    for line in exact.compared:
        print(f"bit for bit the same: {line}")
    for line in exact.failures + exact.skipped:
        print(f"not the same rows: {line.split(': ')[0]}")
    try:
        table = regression.compare_folders(old, new, args.margin, args.alpha)
    except regression.NothingToCompare as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(regression.format_table(table, args.margin))
    passed = table["verdict"] != "inconclusive"
    print(f"{int(passed.sum())} of {len(table)} rows shown not worse by more than "
          f"{args.margin:g}" + ("" if passed.all() else
                                "; the others are inconclusive (more seeds would decide)"))
    return 0 if passed.all() else 1


COMMANDS = {"compare": _compare}
