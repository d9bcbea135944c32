"""How the findings page words verdicts and numbers in prose (no torch)."""

from __future__ import annotations

from collections.abc import Callable

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


def metric_words(what: str, rows: pd.DataFrame, p: str,
                 detail: Callable[[pd.DataFrame], str]) -> str:
    """'Final score: *worse* in 2 (detail); *inconclusive* in 1': each verdict word of metric
    prefix p that rows reach, with its count, and for a decided word `detail` of its rows."""
    said = []
    for word in WORDS:
        hit = rows[rows[f"{p}verdict"] == word]
        if not hit.empty:
            said.append(f"*{word}* in {len(hit)}"
                        + (f" ({detail(hit)})" if word in DECIDED else ""))
    return f"{what[0].upper()}{what[1:]}: " + "; ".join(said)
