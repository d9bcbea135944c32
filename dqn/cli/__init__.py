"""`python -m dqn` (what the Makefile calls): argument parsing and printing only.

May import: every package.
"""
