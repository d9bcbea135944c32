"""The tidy tables a run produces and a study stores: their names and columns, and which names a
variant may have. The same words are CSV columns, figure labels and report headings."""

from __future__ import annotations

import re

TABLES = ("episodes", "evals", "diagnostics")
DIAGNOSTICS = ("loss", "q_mean", "td_abs", "grad_norm")
# a run's records (dqn.core.records); a study's CSVs put "study" and "variant" in front
COLUMNS: dict[str, tuple[str, ...]] = {
    "episodes": ("seed", "episode", "env_step", "return", "length", "epsilon"),
    "evals": ("seed", "env_step", "return", "diverged"),
    "diagnostics": ("seed", "env_step", *DIAGNOSTICS, "epsilon", "diverged"),
}
KEY_COLUMNS = ("study", "variant")

VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
"""A variant name: 1-64 letters, digits and _ . + -, starting with a letter or digit."""
# Strings pandas reads as missing by default (its STR_NA_VALUES) that VARIANT_NAME would allow:
# the CSVs are read without that conversion, but other tools may not be, so these are refused.
MISSING_WORDS = frozenset({"NA", "NULL", "NaN", "None", "nan", "null"})


def variant_name_problem(name: object) -> str | None:
    """Why `name` cannot name a variant, or None when it can."""
    if not isinstance(name, str) or not VARIANT_NAME.fullmatch(name):
        return ("must be 1-64 letters, digits and _ . + -, starting with a letter or digit")
    if name in MISSING_WORDS:
        return "reads as a missing value in CSV tools (pandas, R): choose another name"
    return None
