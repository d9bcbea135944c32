"""A tiny two-variant study file shared by the runner, executor and Ray tests."""

from __future__ import annotations

TINY_BODY = """
[base]
total_steps = 300
learning_starts = 100
eval_every = 150
eval_episodes = 1
log_every = 100
buffer_size = 300
batch_size = 16
device = "cpu"

[variants.baseline]

[variants.no_target]
target = "none"
"""


def tiny_study_text(question: str, seeds: int, top: str = "") -> str:
    """Study-file text: `top` holds extra top-level keys (e.g. "seed_chunk = 2\\n")."""
    return f'question = "{question}"\nseeds = {seeds}\n{top}' + TINY_BODY
