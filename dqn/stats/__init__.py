"""Pure estimators and tests (numpy/scipy only): IQM, stratified bootstrap CIs, probability of
improvement, permutation and equivalence decisions with multiplicity correction, group-sequential
boundaries. Arrays in, numbers out; no I/O.

Imports nothing else from dqn.
"""
