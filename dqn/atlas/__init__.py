"""The atlas (ablations x recipes x environments) from its CSVs: the atlas spec (atlas.toml), the
atlas table (atlas.csv) and its figure. Training the atlas lives in dqn.run.atlas. No torch.

May import: dqn.base, dqn.stats, dqn.store, dqn.analysis, dqn.figures.
"""
