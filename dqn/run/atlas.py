"""`make atlas`: every ablation of atlas.toml under every recipe on every environment.

Each column (a recipe on an environment) is written as an ordinary study file,
results/atlas/<recipe>.<env_id>.toml, whose baseline is the recipe and whose variants are the
ablations, and run like any study into results/atlas/<recipe>.<env_id>/: unit by unit,
resumable, on any executor. An ablation that leaves the recipe's config unchanged (gamma 1.0
under a recipe with gamma 1.0) is left out of that column's file. When the columns are done,
results/atlas/atlas.csv, each column's summary.csv and the heatmap are drawn from their CSVs
(dqn.atlas.table, dqn.atlas.figure).
"""

from __future__ import annotations

import tempfile
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

from dqn.atlas.spec import AtlasError, AtlasSpec, column_name, flipped
from dqn.base.config import EPSILON_KEYS, FIELDS, Config, ConfigError, did_you_mean, from_dict
from dqn.run import recipes, runner
from dqn.run.executors import Executor
from dqn.run.studyfile import StudyFile, load
from dqn.run.sweep import toml_value

BASELINE = "baseline"


def ablation_keys(spec: AtlasSpec, recipe: str, env_id: str) -> dict[str, dict[str, Any]]:
    """Each ablation's keys in one column (over the recipe and the environment's keys), for
    the ablations that change the column's config, in row order."""
    where = f"{spec.path.name}: recipes"
    base_keys = {**recipes.find(recipe, where).keys, "env_id": env_id, **spec.envs[env_id]}
    base = from_dict(base_keys, f"{spec.path.name}: column {column_name(recipe, env_id)}")
    out: dict[str, dict[str, Any]] = {}
    for ab in spec.ablations:
        keys = dict(ab.set)
        if ab.flip is not None:
            keys[ab.flip] = flipped(ab.flip, getattr(base, ab.flip))
        if keys.get("noisy") and not base.noisy:
            # noisy nets explore by their noise: the recipe's epsilon keys go back to the
            # defaults, which noisy = true requires (epsilon is 0 either way)
            keys.update({k: FIELDS[k].default for k in EPSILON_KEYS
                         if getattr(base, k) != FIELDS[k].default})
        variant: Config = from_dict({**base_keys, **keys},
                                    f"{spec.path.name}: [ablations.{ab.name}] under {recipe}")
        if variant != base:
            out[ab.name] = keys
    return out


def column_text(spec: AtlasSpec, recipe: str, env_id: str) -> str:
    """The study file of one column."""
    keys = ablation_keys(spec, recipe, env_id)
    left_out = [ab.name for ab in spec.ablations if ab.name not in keys]
    about = recipes.find(recipe, f"{spec.path.name}: recipes").about
    question = (f"Atlas column: each ablation of {spec.path.name} against the {recipe} recipe "
                f"on {env_id}. {about}")
    if left_out:
        question += f" Left out as the recipe's own setting: {', '.join(left_out)}."
    lines = ["# Written by `make atlas` from atlas.toml; edit atlas.toml, not this file.",
             'question = """', *textwrap.wrap(question, 96), '"""', f"seeds = {spec.seeds}",
             "", "[base]", f'recipe = "{recipe}"', f'env_id = "{env_id}"',
             *(f"{k} = {toml_value(v)}" for k, v in spec.envs[env_id].items()),
             "", f"[variants.{BASELINE}]"]
    for name, values in keys.items():
        lines += ["", f'[variants."{name}"]',
                  *(f"{k} = {toml_value(v)}" for k, v in values.items())]
    return "\n".join(lines) + "\n"


def column_study(spec: AtlasSpec, recipe: str, env_id: str, folder: Path) -> StudyFile:
    """Write (when it changed) and load one column's study file, folder/<recipe>.<env>.toml;
    the file is checked as a study before it is written."""
    path = folder / f"{column_name(recipe, env_id)}.toml"
    text = column_text(spec, recipe, env_id)
    if path.is_file() and path.read_text() == text:
        return load(path)
    with tempfile.TemporaryDirectory() as tmp:
        (draft := Path(tmp) / path.name).write_text(text)
        study = load(draft)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return replace(study, path=path)


def check(spec: AtlasSpec, recipe_names: list[str], env_ids: list[str], *,
          quick: bool = False, device: str | None = None) -> None:
    """Every chosen column as a study, with the run's options, before anything is written."""
    known = recipes.available()
    for name in spec.recipes:
        if name not in known:
            raise AtlasError(f"{spec.path.name}: key 'recipes': {name!r} is not a recipe"
                             f"{did_you_mean(name, known)} (recipes: {', '.join(known)})")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in recipe_names:
            for env_id in env_ids:
                study = column_study(spec, recipe, env_id, Path(tmp))
                try:
                    study.configs(quick=quick, device=device)
                except ConfigError as e:
                    raise AtlasError(f"{study.path.name} (from {spec.path.name}): {e}") from None


def _chosen(given: list[str] | None, known: list[str], what: str, where: str) -> list[str]:
    if not given:
        return known
    for name in given:
        if name not in known:
            raise AtlasError(f"command line: {where} {name!r} is not one of atlas.toml's "
                             f"{what}{did_you_mean(name, known)} ({', '.join(known)})")
    return [k for k in known if k in given]


def run(spec: AtlasSpec, out: Path, *, recipes_: list[str] | None = None,
        envs: list[str] | None = None, ablations: list[str] | None = None,
        quick: bool = False, device: str | None = None,
        executor: Executor | None = None, seed_chunk: int | None = None) -> list[Path]:
    """Train what is missing of the chosen columns and rows, column by column; returns the
    columns' results folders. Every column's study file is written and checked first."""
    rs = _chosen(recipes_, list(spec.recipes), "recipes", "--recipes")
    es = _chosen(envs, list(spec.envs), "envs", "--envs")
    abl = _chosen(ablations, [a.name for a in spec.ablations], "ablations", "--ablations")
    check(spec, rs, es, quick=quick, device=device)  # nothing is written before this passes
    studies = [column_study(spec, r, e, out) for r in rs for e in es]
    done = []
    for i, study in enumerate(studies):
        chosen = [BASELINE, *(v for v in study.variants if v in abl)]
        print(f"[atlas {i + 1}/{len(studies)}] {study.name}: {len(chosen) - 1} ablations")
        done.append(runner.run(study, out_dir=out, variants=chosen, quick=quick,
                               device=device, executor=executor, seed_chunk=seed_chunk,
                               figures=False))  # summary.csv: written with atlas.csv
    return done
