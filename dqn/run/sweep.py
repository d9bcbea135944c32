"""Sweeps: a grid over config keys, run as an on-the-fly study against the default baseline.

`python -m dqn sweep --grid lr=1e-3,3e-4 --grid batch_size=32,64` makes one variant per point
of the Cartesian product of the grids (but the point that is the baseline's own config),
writes the study file it amounts to as results/sweeps/<name>.toml (so the sweep is a file
like any study, and re-running it resumes), and runs it into results/sweeps/<name>/ with the
same CSVs, figures and verdicts as a study.
"""

from __future__ import annotations

import itertools
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from dqn.base.config import Config
from dqn.run.studyfile import StudyError, StudyFile, load, parse_overrides, settings_label

BASELINE = "baseline"
"""The sweep's baseline: the default config (with any --set overrides)."""


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """--grid KEY=V1,V2,... items as {key: [values]}, each value read as TOML (else text);
    commas inside [...] belong to a list value (hidden=[64,64],[128,128])."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        values = [v for v in re.split(r",(?![^\[]*\])", raw) if v.strip()]
        if not eq or not key.strip() or not values:
            raise StudyError(f"command line: --grid {item!r}: expected KEY=V1,V2,..., e.g. "
                             "--grid lr=1e-3,3e-4")
        if key.strip() in grid:
            raise StudyError(f"command line: --grid {item!r}: key '{key.strip()}' given twice")
        grid[key.strip()] = [next(iter(parse_overrides([f"{key}={v}"]).values()))
                             for v in values]
    if not grid:
        raise StudyError("command line: sweep needs at least one --grid KEY=V1,V2,...")
    return grid


def _same(a: Any, b: Any) -> bool:
    """Config values equal, a TOML list and a default tuple alike."""
    norm = (lambda v: list(v) if isinstance(v, tuple | list) else v)  # noqa: E731
    return bool(norm(a) == norm(b))


def toml_value(value: Any) -> str:
    """A TOML literal for a config value (bool, number, string or list of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the names config keys take
    return repr(value)


def study_text(grid: dict[str, list[Any]], seeds: int | None,
               base: dict[str, Any]) -> str:
    """The study file of a sweep: the default baseline and one variant per grid point."""
    shown = ", ".join(f"{k} in {{{', '.join(map(str, v))}}}" for k, v in grid.items())
    lines = ['question = """', f"Sweep: {shown}, every combination against the default "
             "agent.", '"""']
    if seeds is not None:
        lines.append(f"seeds = {seeds}")
    if base:
        lines += ["", "[base]", *(f"{k} = {toml_value(v)}" for k, v in base.items())]
    lines += ["", f"[variants.{BASELINE}]"]
    for point in itertools.product(*grid.values()):
        values = dict(zip(grid, point, strict=True))
        if all(_same(v, base.get(k, getattr(Config, k, None))) for k, v in values.items()):
            continue  # the baseline's own config: it would train the baseline's numbers again
        lines += ["", f'[variants."{settings_label(values)}"]',
                  *(f"{k} = {toml_value(v)}" for k, v in values.items())]
    return "\n".join(lines) + "\n"


def make(grid_items: list[str], folder: Path, *, name: str | None = None,
         seeds: int | None = None, base: dict[str, Any] | None = None) -> StudyFile:
    """Check a sweep's study file (every error names the grid item or key) and only then
    write it as folder/<name>.toml; returns it loaded. The name defaults to the grid's
    label, so another grid never lands in this one's results."""
    grid = parse_grid(grid_items)
    name = name or "sweep-" + settings_label({k: v for k, v in grid.items()})
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,150}", name):
        raise StudyError(f"command line: --name {name!r}: use letters, digits and _ . + -")
    text = study_text(grid, seeds, base or {})
    with tempfile.TemporaryDirectory() as tmp:
        draft = Path(tmp) / f"{name}.toml"
        draft.write_text(text)
        try:
            load(draft)
        except StudyError as e:
            raise StudyError(f"command line: --grid: {e}") from None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return load(path)
