"""Turning study files into trained units: recipes, study files, plans, executors (local, Ray),
the runner, adaptive seeds, sweeps, training the atlas, playing and benchmarking.

May import: every package above except dqn.cli.
"""
