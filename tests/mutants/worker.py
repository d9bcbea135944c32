"""One mutant's tiers, run inside a mutated copy of the repository (tests/mutants/harness.py):
the fast learning tier (with its exact check) and the golden runs, against the committed records
of the original checkout. Writes one JSON object."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import dqn
from dqn.analysis.expectations import check
from dqn.analysis.results import load
from dqn.analysis.scoring import study_scores
from dqn.run import runner, studyfile
from dqn.stats.estimators import iqm, prob_improvement
from dqn.store.reproduce import compare


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--committed", type=Path, required=True, help="the original checkout")
    parser.add_argument("--json", type=Path, required=True, help="where to write the outcome")
    args = parser.parse_args()
    here = Path(dqn.__file__).resolve().parents[1]
    assert here != args.committed.resolve(), f"imported dqn from {here}, not the copy"
    out = {"exact": [], "golden": [], "fast": []}
    with tempfile.TemporaryDirectory() as tmp:
        fast = [e for p in studyfile.available().values() for e in studyfile.load(p).expectations()
                if e.tier == "fast"]
        trained: dict[str, Path] = {}
        for e in fast:
            if e.study not in trained:
                runner.run(studyfile.find(e.study), out_dir=Path(tmp) / "fast", seeds=e.seeds,
                           steps=e.steps, variants=None, figures=False, progress=False)
                trained[e.study] = Path(tmp) / "fast" / e.study
                out["exact"] += compare(trained[e.study],
                                        args.committed / "results" / e.study).failures
            if not check(e, trained[e.study]).passed:
                out["fast"].append(e.id)
        golden = here / "tests" / "golden" / "golden.toml"
        runner.run(studyfile.load(golden), out_dir=Path(tmp) / "golden", figures=False,
                   progress=False)
        found = compare(Path(tmp) / "golden" / "golden",
                        args.committed / "tests" / "golden" / "results" / "golden")
        out["golden"] = sorted({f.split(":")[0] for f in found.failures})  # failing runs
        out["golden_runs"] = len(found.compared) + len(set(out["golden"]))
        new = study_scores(load(trained["baseline"]))
        old = study_scores(load(args.committed / "results" / "baseline"))
        new, old = new[new["variant"] == "baseline"], old[old["variant"] == "baseline"]
        out["baseline"] = {
            "final_iqm": float(iqm(new["final"])), "solved": int((new["final"] >= 475).sum()),
            "seeds": len(new), "auc_iqm": float(iqm(new["auc"])),
            "p_final": prob_improvement(new["final"], old["final"]),
            "p_auc": prob_improvement(new["auc"], old["auc"])}
    args.json.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
