"""The study CSVs as text: atomic writes, reading without type guessing, and each unit's rows.

The store never lets pandas reinterpret rows it keeps: existing rows are read as strings and
written back unchanged, so a variant called "NA" stays "NA", an integer column never turns
into floats, and a unit's rows hash the same before and after other units are merged in.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd

from dqn.base.schema import COLUMNS, KEY_COLUMNS

# every column but the keys reads an empty cell as NaN (how pandas writes a missing number)
_EMPTY_IS_NAN = {c: [""] for columns in COLUMNS.values() for c in columns}


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a uniquely named temporary sibling, flush it to disk, then rename it
    onto `path`: readers see the old file or the new one, never a part. The temporary file is
    removed when anything fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_text(path: Path) -> pd.DataFrame:
    """A CSV with every cell as the string written (no NaN, no type guessing). Raises
    pd.errors.ParserError / EmptyDataError on a file that is not a CSV table."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def read_typed(path: Path) -> pd.DataFrame:
    """A CSV for analysis: numbers as numbers (an empty cell is NaN), but `study` and `variant`
    kept as written, so no variant name is ever read as missing."""
    return pd.read_csv(path, keep_default_na=False, na_values=_EMPTY_IS_NAN,
                       dtype=dict.fromkeys(KEY_COLUMNS, str))


def to_text(records: pd.DataFrame, study: str, variant: str) -> pd.DataFrame:
    """One unit's records (typed) as the string rows they are written as, with the key columns
    in front. Going through CSV once first gives float32 columns the digits float64 rows read
    back from a file have, so the text does not depend on where the rows came from."""
    typed = pd.read_csv(io.StringIO(records.to_csv(index=False)))
    typed.insert(0, "variant", variant)
    typed.insert(0, "study", study)
    return pd.read_csv(io.StringIO(typed.to_csv(index=False)), dtype=str,
                       keep_default_na=False, na_filter=False)


def unit_rows(table: pd.DataFrame, variant: str, seeds: Iterable[int]) -> pd.Series:
    """Mask (n,) of the rows of one unit (a variant's seeds) in a text table."""
    return (table["variant"] == variant) & table["seed"].isin([str(s) for s in seeds])


def digest(rows: pd.DataFrame) -> str:
    """sha256 of rows of a text table, in order, as CSV text without a header."""
    return hashlib.sha256(rows.to_csv(index=False, header=False).encode()).hexdigest()


def merge(old: pd.DataFrame | None, keep: pd.Series | None, new: pd.DataFrame,
          order: Mapping[str, int]) -> pd.DataFrame:
    """The kept rows of `old` and the `new` rows, ordered by variant (study-file order, then
    unknown names by name), seed and env step; all text."""
    parts = [new] if old is None else [old[keep], new]
    frame = pd.concat(parts, ignore_index=True)
    rank = frame["variant"].map(lambda v: order.get(v, len(order)))
    return (frame.assign(_rank=rank, _seed=frame["seed"].astype(int),
                         _step=frame["env_step"].astype(int))
            .sort_values(["_rank", "variant", "_seed", "_step"], kind="stable")
            .drop(columns=["_rank", "_seed", "_step"]).reset_index(drop=True))


def write_text(path: Path, table: pd.DataFrame) -> Path:
    """Write a text table atomically."""
    return write_atomic(path, lambda tmp: table.to_csv(tmp, index=False))
