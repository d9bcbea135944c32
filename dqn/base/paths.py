"""Where the repository keeps its study files, results and recipes: studies/, results/ and
recipes/ beside the package, or the folders named by $DQN_STUDIES_DIR, $DQN_RESULTS_DIR and
$DQN_RECIPES_DIR (for an installed package, or to keep results elsewhere);
`python -m dqn --studies-dir/--results-dir` set them for one command."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # dqn/base/paths.py -> the repository
STUDIES_DIR = Path(os.environ.get("DQN_STUDIES_DIR") or ROOT / "studies")
RESULTS_DIR = Path(os.environ.get("DQN_RESULTS_DIR") or ROOT / "results")
RECIPES_DIR = Path(os.environ.get("DQN_RECIPES_DIR") or ROOT / "recipes")
