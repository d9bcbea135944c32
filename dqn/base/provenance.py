"""Provenance of a run: the code's git commit and the versions of the software that shaped the
numbers. A leaf module: it imports nothing of the project but its paths."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path

from dqn.base.paths import ROOT

NUMERICS = 3
"""The version of what training a (config, seed) pair produces, raised whenever the same config
and seed would give other records. Each finished chunk of seeds records it, and only chunks of
the current version count as finished (3: each seed's random numbers from that seed alone)."""

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


def study_file(path: Path) -> dict[str, str]:
    """Where a run's study file came from: its path (relative to the repository when inside
    it), the sha256 of its text, and its git state: 'committed', 'uncommitted changes',
    'untracked', 'outside the repository' or 'no git'."""
    path = Path(path).resolve()
    text_sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    try:
        shown = path.relative_to(ROOT).as_posix()
    except ValueError:
        return {"path": str(path), "sha256": text_sha, "git": "outside the repository"}
    try:
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "--", shown], cwd=ROOT,
                                 capture_output=True, text=True)
        if tracked.returncode == 128 and "not a git repository" in tracked.stderr:
            state = "no git"
        elif tracked.returncode != 0:
            state = "untracked"
        else:
            changed = subprocess.run(["git", "status", "--porcelain", "--", shown], cwd=ROOT,
                                     capture_output=True, text=True, check=True).stdout.strip()
            state = "uncommitted changes" if changed else "committed"
    except (OSError, subprocess.CalledProcessError):
        state = "no git"
    return {"path": shown, "sha256": text_sha, "git": state}
