"""Documents made from the CSVs alone: results/REPORT.md, the findings page and rliable export.
No torch.

May import: dqn.base, dqn.stats, dqn.store, dqn.analysis, dqn.figures, dqn.atlas.
"""
