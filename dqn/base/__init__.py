"""The shared vocabulary every layer uses: the Config and its keys, variant and env names, the
table schemas, result paths, environment facts and provenance.

Imports nothing else from dqn; no torch.
"""
