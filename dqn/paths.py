"""Where the repository keeps its study files and results."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDIES_DIR = ROOT / "studies"
RESULTS_DIR = ROOT / "results"
