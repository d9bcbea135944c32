"""The mutation harness's list and its table in docs/testing.md stay current (make mutants runs
the mutants themselves; this only reads files)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "mutants"))
import harness  # noqa: E402
from mutants import MUTANTS  # noqa: E402


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_mutant_still_finds_its_text_once(mutant) -> None:
    text = (ROOT / mutant.path).read_text()
    assert text.count(mutant.old) == 1, f"{mutant.name}: update tests/mutants/mutants.py"
    assert mutant.new != mutant.old


def test_at_least_ten_mutants_with_distinct_names() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) >= 10 and len(set(names)) == len(names)


def test_the_docs_table_is_the_last_run() -> None:
    text = (ROOT / "docs" / "testing.md").read_text()
    shown = text[text.index(harness.START) + len(harness.START):text.index(harness.END)].strip()
    if not harness.OUT.is_file():
        assert shown == "", "docs/testing.md shows a mutants table without its CSV"
        return
    table = pd.read_csv(harness.OUT, keep_default_na=False)
    assert shown == harness.markdown(table)
    assert set(table["mutant"][1:]) == {m.name for m in MUTANTS}, "re-run make mutants"
