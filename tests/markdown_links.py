"""Markdown helpers shared by the docs and report tests."""

from __future__ import annotations

import re


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors of a markdown text: lower case, punctuation dropped, spaces to
    hyphens."""
    heads = [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}
