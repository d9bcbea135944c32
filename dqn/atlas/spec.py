"""The atlas's plan, atlas.toml: which recipes, environments and ablations it crosses.

A column is one (recipe, environment) pair, run as one study named `<recipe>.<env_id>`; a row is
one ablation; a cell is one ablation against its column's baseline (the recipe as it is). The
file is validated when it is read, before anything trains: every error names the file, the key
and the value. Turning a column into a study file needs the recipes' keys (dqn.run.atlas); this
module only reads and checks the plan, so the analysis (dqn.atlas.table) can use it without
the runner.
"""

from __future__ import annotations

import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dqn.base.config import FIELDS, Config, ConfigError, did_you_mean, from_dict, is_positive_int
from dqn.base.env_facts import ENV_IDS
from dqn.base.names import unknown_key
from dqn.base.paths import ROOT
from dqn.base.schema import variant_name_problem

ATLAS_FILE = ROOT / "atlas.toml"
ATLAS_KEYS = {"about": "one line: what the atlas asks",
              "seeds": "seeds per variant in every column (default 20)",
              "recipes": "the recipes (recipes/<name>.toml), in column order",
              "envs": "one table per environment id: config keys every column on it sets",
              "ablations": "one table per ablation, in row order: label, and set or flip"}
ABLATION_KEYS = ("label", "set", "flip")


HINTS = typing.get_type_hints(Config)  # each key's type: which keys a flip can turn


class AtlasError(ValueError):
    """A broken atlas.toml; the message names the file, the key and the value."""


@dataclass(frozen=True)
class Ablation:
    name: str
    label: str
    """What the row is called in atlas.csv and the figure."""
    set: dict[str, Any]
    """Config keys set to these values (empty for a flip)."""
    flip: str | None
    """A key turned to its other value (bool, or the other of two choices), or None."""


@dataclass(frozen=True)
class AtlasSpec:
    path: Path
    about: str
    seeds: int
    recipes: tuple[str, ...]
    envs: dict[str, dict[str, Any]]
    ablations: tuple[Ablation, ...]

    def columns(self) -> list[tuple[str, str]]:
        """Every (recipe, env_id) pair, recipes outer: the order `make atlas` trains them."""
        return [(r, e) for r in self.recipes for e in self.envs]


def column_name(recipe: str, env_id: str) -> str:
    """The study (and results folder) name of one column."""
    return f"{recipe}.{env_id}"


def flipped(key: str, value: Any) -> Any:
    """A flip's new value: not value for a bool key, the other choice for a two-choice key."""
    hint = HINTS[key]
    if hint is bool:
        return not value
    choices = typing.get_args(hint)
    return choices[1 - choices.index(value)]


def _flippable(key: str) -> bool:
    hint = HINTS.get(key)
    return hint is bool or (typing.get_origin(hint) is Literal and len(typing.get_args(hint)) == 2)


def load(path: Path = ATLAS_FILE) -> AtlasSpec:
    """Read and check atlas.toml."""
    where = path.name
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise AtlasError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise AtlasError(f"{where}: not valid TOML: {e}") from None
    if (problem := unknown_key(data, ATLAS_KEYS)) is not None:
        raise AtlasError(f"{where}: {problem}")
    about = data.get("about", "")
    seeds = data.get("seeds", 20)
    if not is_positive_int(seeds):
        raise AtlasError(f"{where}: key 'seeds': {seeds!r} must be a positive integer")
    recipes = data.get("recipes")
    if (not isinstance(recipes, list) or not recipes
            or not all(isinstance(r, str) and r for r in recipes)
            or len(set(recipes)) != len(recipes)):
        raise AtlasError(f"{where}: key 'recipes': {recipes!r} must be a list of distinct "
                         "recipe names")
    envs = data.get("envs")
    if not isinstance(envs, dict) or not envs:
        raise AtlasError(f"{where}: key 'envs': needs at least one [envs.\"<env id>\"] table")
    for env_id, keys in envs.items():
        if env_id not in ENV_IDS:
            raise AtlasError(f"{where}: [envs.{env_id!r}]: {env_id!r} is not a supported "
                             f"environment{did_you_mean(env_id, ENV_IDS)} (supported: "
                             f"{', '.join(ENV_IDS)})")
        _config_keys(keys, f"{where}: [envs.{env_id!r}]")
    return AtlasSpec(path, about, seeds, tuple(recipes), {e: dict(k) for e, k in envs.items()},
                     _ablations(data.get("ablations"), where))


def _config_keys(keys: Any, where: str) -> None:
    if not isinstance(keys, dict):
        raise AtlasError(f"{where}: {keys!r} must be a table of config keys")
    if "env_id" in keys:
        raise AtlasError(f"{where}: key 'env_id': {keys['env_id']!r}: the environment is the "
                         "column's (atlas.toml's envs), not a key to set")
    try:
        from_dict(keys, where)
    except ConfigError as e:
        raise AtlasError(str(e)) from None


def _ablations(table: Any, where: str) -> tuple[Ablation, ...]:
    if not isinstance(table, dict) or not table:
        raise AtlasError(f"{where}: key 'ablations': needs at least one [ablations.NAME] table")
    out = []
    for name, spec in table.items():
        at = f"{where}: [ablations.{name}]"
        if (problem := variant_name_problem(name)) is not None:
            raise AtlasError(f"{at}: ablation name {name!r}: {problem}")
        if name == "baseline":
            raise AtlasError(f"{at}: 'baseline' is each column's own recipe, not an ablation")
        if not isinstance(spec, dict):
            raise AtlasError(f"{at}: {spec!r} must be a table")
        if (problem := unknown_key(spec, ABLATION_KEYS)) is not None:
            raise AtlasError(f"{at}: {problem}")
        label = spec.get("label")
        if not isinstance(label, str) or not label.strip():
            raise AtlasError(f"{at}: key 'label': {label!r} must be a non-empty string")
        if ("set" in spec) == ("flip" in spec):
            raise AtlasError(f"{at}: give exactly one of 'set' (keys and values) or 'flip' "
                             "(a key)")
        flip = spec.get("flip")
        if flip is not None and not _flippable(flip):
            raise AtlasError(f"{at}: key 'flip': {flip!r} is not a true/false or two-choice "
                             f"config key{did_you_mean(str(flip), FIELDS)}")
        settings = spec.get("set", {})
        _config_keys(settings, f"{at} set")
        if not settings and flip is None:
            raise AtlasError(f"{at}: key 'set': an empty table changes nothing")
        out.append(Ablation(name, label.strip(), dict(settings), flip))
    return tuple(out)
