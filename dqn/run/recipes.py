"""Recipes: named sets of config keys, recipes/<name>.toml, that a study file's [base] or a
variant table names with `recipe = "<name>"`.

A recipe is the whole training setup of a published agent (a teaching notebook, CleanRL's
dqn.py, the RL Zoo), so an ablation can be asked in the setting it was first asked in. A
recipe file holds `about` (one line: where the settings come from) and config keys, each
validated like a study's; comments beside the keys cite their source and say where the
recipe departs from it. In a study, the recipe's keys come first and the table naming it
overrides them (studyfile.StudyFile.configs).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dqn.base import paths
from dqn.base.config import ConfigError, did_you_mean, from_dict


class RecipeError(ValueError):
    """A missing or broken recipe; the message names the file, the key and the value."""


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    about: str
    keys: dict[str, Any]  # config keys, validated


def available() -> dict[str, Path]:
    """Recipe name -> file, for every recipes/*.toml (or $DQN_RECIPES_DIR)."""
    return {p.stem: p for p in sorted(paths.RECIPES_DIR.glob("*.toml"))}


def find(name: Any, where: str) -> Recipe:
    """The recipe called `name`, named at `where` (a study file and table, for errors)."""
    known = available()
    if not isinstance(name, str) or name not in known:
        raise RecipeError(f"{where}: key 'recipe': {name!r} is not a recipe"
                          f"{did_you_mean(str(name), known)} (recipes in "
                          f"{paths.RECIPES_DIR}: {', '.join(known) or 'none'})")
    return load(known[name])


@functools.cache
def load(path: Path) -> Recipe:
    """Parse and validate one recipe file."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path.name}: not valid TOML: {e}") from None
    about = data.pop("about", None)
    if not isinstance(about, str) or not about.strip():
        raise RecipeError(f"{path.name}: key 'about': {about!r} must say where the recipe "
                          "comes from")
    try:
        from_dict(data, path.name)
    except ConfigError as e:
        raise RecipeError(str(e)) from None
    return Recipe(path.stem, path, " ".join(about.split()), data)
