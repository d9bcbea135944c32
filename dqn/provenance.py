"""Provenance of a run: the code's git commit and the versions of the software that shaped the
numbers. A leaf module: it imports nothing of the project but its paths."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess

from dqn.paths import ROOT

# What a run computes depends on these; results/ and the README do not.
SOURCES = ("dqn", "studies", "pyproject.toml", "Makefile")
PACKAGES = ("torch", "gymnasium", "numpy")


def git_commit() -> str:
    """The current commit, with '-dirty' when what produces results has uncommitted changes.

    Only the code, the study files and the dependencies count: rewriting results/ (a re-run
    of tracked results) or the README does not change what a run computes.
    """
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                *SOURCES], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of the software that shaped the numbers (from the installed packages' metadata,
    so nothing heavy is imported to ask)."""
    return {"python": platform.python_version(),
            **{name: importlib.metadata.version(name) for name in PACKAGES}}
