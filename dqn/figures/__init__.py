"""A study's figures from its CSVs: the shared style, learning curves, score figures and the
plots entry point. No torch.

May import: dqn.base, dqn.stats, dqn.store, dqn.analysis.
"""
