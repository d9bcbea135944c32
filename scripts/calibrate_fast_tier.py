"""Calibrate the fast tier's thresholds from repeated runs on disjoint seed sets.

The fast tier runs seeds 0..n-1, so with fixed code it is deterministic; what a threshold must
survive is a correct change that reshuffles the random streams, which is like drawing a fresh
seed set. This trains the tier's exact configuration on R disjoint seed sets and prints, per
repeat, the statistic each expectation checks, so a threshold can be set with a known margin.

    .venv/bin/python scripts/calibrate_fast_tier.py baseline baseline 20 50000 5
"""

from __future__ import annotations

import sys

import numpy as np

from dqn.analysis.scoring import run_scores
from dqn.base import env_facts
from dqn.core.train import train
from dqn.run import studyfile
from dqn.stats.estimators import iqm, prob_improvement, prob_improvement_ci


def main(study_name: str, variant: str, seeds: int, steps: int, repeats: int,
         other: str | None = None) -> None:
    s = studyfile.find(study_name)
    config = s.configs(steps=steps)[variant]
    other_config = s.configs(steps=steps)[other] if other else None
    env = env_facts.ENVS[config.env_id]
    for r in range(repeats):
        seed_list = list(range(1000 * (r + 1), 1000 * (r + 1) + seeds))
        final = run_scores(train(config, seed_list).evals.assign(variant=variant),
                           config.env_id)["final"].to_numpy()
        line = (f"repeat {r}: seeds {seed_list[0]}..{seed_list[-1]}  final IQM "
                f"{iqm(final):.1f}  solved {np.mean(final >= env.threshold):.2f}  "
                f"min {final.min():.1f}")
        if other_config is not None:
            base = run_scores(train(other_config, seed_list).evals.assign(variant=other),
                              config.env_id)["final"].to_numpy()
            lo, hi = prob_improvement_ci(final, base)
            line += (f"  P({variant} > {other}) {prob_improvement(final, base):.2f} "
                     f"[{lo:.2f}, {hi:.2f}]")
        print(line, flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), a[5] if len(a) > 5 else None)
