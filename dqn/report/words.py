"""How the findings page words verdicts and numbers in prose (no torch)."""

from __future__ import annotations

import pandas as pd

WORDS = ("worse", "better", "equivalent", "inconclusive", "too few seeds")
"""The verdict words in the order the page lists them."""
DECIDED = ("worse", "better", "equivalent")
"""The words that are decisions (the rest are counted, not listed)."""


def num(x: float) -> str:
    """A return or IQM as prose shows it: integers above 100 in size, else 3 significant
    figures."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def span(values: pd.Series) -> str:
    """'20' when every value is 20, else 'min-max'."""
    lo, hi = values.min(), values.max()
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
