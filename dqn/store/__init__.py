"""Results on disk: a study's units, atomic CSV tables, the results lock, the journal that
records which unit finished with which data, and saved weights. No torch.

May import: dqn.base, dqn.stats.
"""
