"""dqn-ablations: seed-batched DQN ablation studies with honest statistics.

The package is cut by layer, bottom to top; a package imports only from the packages listed
below it here (tests/test_layers.py checks this from the package names):

    base      the shared vocabulary: Config, names, table schemas, paths, env facts, provenance
    stats     pure estimators and tests (numpy/scipy): IQM, bootstrap CIs, decisions, sequential
    core      the seed-batched agent (torch): envs, networks, replay, agent, train
    store     results on disk: units, tables, locks, the journal, weights
    analysis  scores and verdicts of a study from its CSVs
    figures   a study's figures from its CSVs
    atlas     the atlas (ablations x recipes x environments) from its CSVs
    report    documents from the CSVs: REPORT.md, the findings, rliable export
    run       turning study files into trained units: plans, executors, adaptive seeds, sweeps
    cli       `python -m dqn` (`make ...`)

core sits beside stats, store, analysis, figures, atlas and report, never below them: those
read CSVs and must not need torch (`make figures`, `make report`). Only run and cli join them.

Public API (thin aliases kept at the top level): `from dqn.config import Config`,
`from dqn.train import train`, and `python -m dqn`.
"""

from dqn.base import numerics as _numerics

_numerics.pin()  # before torch computes anything: the same CPU numbers on every AVX2 machine

