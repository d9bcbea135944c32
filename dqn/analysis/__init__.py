"""A study's scores and verdicts from its CSVs: loading results, final score and AUC per seed,
verdicts per comparison, learning expectations, the overview. No torch.

May import: dqn.base, dqn.stats, dqn.store.
"""
