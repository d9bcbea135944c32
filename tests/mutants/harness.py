"""`make mutants`: plant each bug of tests/mutants/mutants.py in a temporary copy of the code
and report which tier catches it.

Tiers, cheapest first: the exact check (the baseline's fast-tier training against the committed
results/baseline rows, and the golden runs against tests/golden/results; both in `make test`),
and the fast tier's learning thresholds (also in `make test`). The full tier (`make regress`,
hours per mutant) is not run. A control copy with no mutant must pass every tier, or the table
means nothing. Each mutant trains about 90 s on one core; ONLY=a,b picks mutants. Writes
results/mutants/mutants.csv and the table in docs/testing.md (between its mutants markers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutants import MUTANTS, Mutant  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "results" / "mutants" / "mutants.csv"
DOC = ROOT / "docs" / "testing.md"
START, END = "<!-- mutants:start -->", "<!-- mutants:end -->"
COPIED = ("dqn", "studies", "recipes", "pyproject.toml", "tests/golden/golden.toml",
          "tests/mutants/worker.py")


def _copy(dst: Path) -> None:
    for name in COPIED:
        src = ROOT / name
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, target)


def plant(mutant: Mutant, dst: Path) -> None:
    """Apply one mutant to the copy at dst; its old text must occur exactly once."""
    path = dst / mutant.path
    text = path.read_text()
    if text.count(mutant.old) != 1:
        raise SystemExit(f"{mutant.name}: {mutant.path} holds its text "
                         f"{text.count(mutant.old)} times, not once: update tests/mutants")
    path.write_text(text.replace(mutant.old, mutant.new))


def run_one(mutant: Mutant | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        copy = Path(tmp)
        _copy(copy)
        if mutant is not None:
            plant(mutant, copy)
        env = {**os.environ, "PYTHONPATH": str(copy), "DQN_THREADS": "1"}
        env.pop("DQN_RESULTS_DIR", None)
        env.pop("DQN_STUDIES_DIR", None)
        done = subprocess.run([sys.executable, str(copy / "tests/mutants/worker.py"),
                               "--committed", str(ROOT), "--json", str(copy / "out.json")],
                              cwd=copy, env=env, capture_output=True, text=True)
        out = json.loads((copy / "out.json").read_text()) if done.returncode == 0 else None
    name = mutant.name if mutant else "none (control)"
    if out is None:
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        return {"mutant": name, "error": tail[0]}
    b = out["baseline"]
    exact = bool(out["exact"]) or bool(out["golden"])
    return {
        "mutant": name, "area": mutant.area if mutant else "", "what": mutant.what if mutant
        else "the code as committed",
        "final_iqm": round(b["final_iqm"], 1), "solved": f"{b['solved']}/{b['seeds']}",
        "auc_iqm": round(b["auc_iqm"], 3), "p_final": round(b["p_final"], 2),
        "p_auc": round(b["p_auc"], 2),
        "exact_baseline": "caught" if out["exact"] else "passed",
        "exact_golden": (f"caught ({len(set(out['golden']))} of {out['golden_runs']})"
                         if out["golden"]
                         else "passed"),
        "fast_tier": "caught" if out["fast"] else "passed",
        "caught_by": ("exact check" if exact else "") + (" + fast tier" if out["fast"] else "")
        or "nothing", "error": ""}


def markdown(table: pd.DataFrame) -> str:
    cols = {"mutant": "mutant", "what": "planted bug", "final_iqm": "final IQM",
            "solved": "solved", "auc_iqm": "AUC IQM", "p_final": "P(> committed) final",
            "p_auc": "P(> committed) AUC", "exact_baseline": "exact: baseline",
            "exact_golden": "exact: golden runs", "fast_tier": "fast-tier thresholds"}
    shown = table[list(cols)].rename(columns=cols).astype(str)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated mutant names")
    args = parser.parse_args()
    chosen = MUTANTS if not args.only else [m for m in MUTANTS
                                            if m.name in args.only.split(",")]
    jobs: list[Mutant | None] = [None, *chosen]
    workers = max(1, (os.cpu_count() or 1))
    rows = []
    with ThreadPoolExecutor(workers) as pool:
        for row in pool.map(run_one, jobs):
            rows.append(row)
            print(f"{row['mutant']}: " + (row["error"] or
                  f"{row['caught_by']} (baseline final IQM {row['final_iqm']}, "
                  f"solved {row['solved']}, P(AUC > committed) {row['p_auc']})"), flush=True)
    table = pd.DataFrame(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT, index=False)
    if not args.only and not table["error"].astype(bool).any():
        text = DOC.read_text()
        a, b = text.index(START) + len(START), text.index(END)
        DOC.write_text(text[:a] + "\n" + markdown(table) + "\n" + text[b:])
    control = table.iloc[0]
    if control["error"] or control["caught_by"] != "nothing":
        print("the control copy (no mutant) did not pass every tier", file=sys.stderr)
        return 1
    missed = table.iloc[1:][table.iloc[1:]["caught_by"] == "nothing"]
    print(f"{len(table) - 1 - len(missed)} of {len(table) - 1} mutants caught; "
          f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
