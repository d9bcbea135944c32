"""Study files (`studies/*.toml`): parse and validate them, and resolve each variant's config.

A study file holds a `question`, the number of `seeds`, `base` overrides for every variant,
named `variants` of config overrides, and optional `expect` and `fast` tables (learning
expectations, dqn.analysis.expectations). Everything is validated when the file is loaded, before
anything trains; every error names the file, the key and the value.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dqn.analysis.expectations import Expectation, ExpectationError
from dqn.analysis.expectations import validate as validate_expectations
from dqn.base.config import Config, ConfigError, did_you_mean, from_dict, is_positive_int
from dqn.base.names import unknown_key
from dqn.base.paths import STUDIES_DIR
from dqn.base.schema import variant_name_problem
from dqn.run import recipes
from dqn.stats.decisions import MARGIN
from dqn.stats.sequential import Design

STUDY_KEYS = {
    "question": "one paragraph: the question the study answers",
    "seeds": "seeds per variant (default 20)",
    "seed_chunk": "seeds per unit of work, each batched on one device (default: all seeds)",
    "baseline": "the variant others are compared with (default 'baseline')",
    "margin": "equivalence margin: 'equivalent' means |P(improvement) - 1/2| < margin "
              "(default 0.15)",
    "final_window": "evaluations a seed's final score averages, declared before the run "
                    "(default 3; REPORT.md shows the verdicts at 1, 3, 5 and 10 beside it)",
    "base": "config overrides applied to every variant",
    "variants": "named config overrides, one table per variant",
    "adaptive": "train in stages, deciding each comparison group-sequentially: stage, "
                "max_seeds, spending (dqn.run.adaptive; instead of seeds)",
    "commit_weights": "true: keep the final network weights (results/<study>/weights/) in "
                      "git; default false, they stay on the machine that trained them",
    "expect": "learning expectations per variant, checked by `make regress`",
    "fast": "the CI tier of expectations: seeds, steps and expect tables, run by `make test`",
}
QUICK = {"seeds": 3, "total_steps": 2_000, "learning_starts": 500, "eval_every": 1_000,
         "eval_episodes": 2, "log_every": 250}


class StudyError(ValueError):
    """A broken study file or an impossible request; the message names file, key and value."""


@dataclass(frozen=True)
class StudyFile:
    """A parsed and validated study file."""

    name: str
    path: Path
    question: str
    seeds: int
    baseline: str
    base: dict[str, Any]
    variants: dict[str, dict[str, Any]]
    expect: dict[str, dict[str, Any]] = field(default_factory=dict)
    fast: dict[str, Any] = field(default_factory=dict)
    seed_chunk: int | None = None  # None: each variant's seeds train as one unit
    margin: float = MARGIN  # equivalence margin on P(improvement), dqn.stats.decisions
    final_window: int | None = None  # evaluations a final score averages (None: the default)
    adaptive: dict[str, Any] | None = None  # [adaptive] design keys; None: fixed seeds
    commit_weights: bool = False  # weights/ without its own .gitignore (dqn.store.weights)

    def configs(self, steps: int | None = None, device: str | None = None,
                quick: bool = False,
                overrides: dict[str, Any] | None = None) -> dict[str, Config]:
        """Each variant's resolved config, validated. Later sources win: [base], then the
        variant's table, then --quick, then the command line (--set KEY=VALUE overrides, then
        --steps and --device). An error is
        blamed on the source that set the offending key (for a relation such as
        learning_starts < total_steps, the latest source of either key)."""
        cli: dict[str, Any] = dict(overrides or {})
        if steps is not None:
            cli["total_steps"] = steps
        if device is not None:
            cli["device"] = device
        out = {}
        for name, overrides in self.variants.items():
            layers = [*self._layers(self.base, f"{self.path.name} [base]"),
                      *self._layers(overrides, f"{self.path.name} [variants.{name}]")]
            if quick:  # keep each variant's own learning_starts when it already fits
                own = {k: v for _, values in layers for k, v in values.items()}.get(
                    "learning_starts", Config.learning_starts)
                shrink = {k: v for k, v in QUICK.items() if k != "seeds"}
                layers.append(("--quick", shrink | {
                    "learning_starts": min(own, QUICK["learning_starts"])}))
            layers.append(("command line", cli))
            merged: dict[str, Any] = {}
            source: dict[str, str] = {}
            for where, values in layers:
                merged.update(values)
                source.update(dict.fromkeys(values, where))
            try:
                out[name] = from_dict(merged)
            except ConfigError as e:
                rank = [where for where, _ in layers]
                blamed = [source[k] for k in e.keys if k in source] or [layers[-1][0]]
                where = max(blamed, key=rank.index)
                context = (f" (with {self.path.name} [variants.{name}])"
                           if where in ("command line", "--quick") else "")
                raise ConfigError(f"{where}: {e}{context}", keys=e.keys) from None
        return out

    def _layers(self, table: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any]]]:
        """A [base] or variant table as config layers: the recipe it names (recipes/), then
        its own keys, which override the recipe's."""
        own = {k: v for k, v in table.items() if k != "recipe"}
        if "recipe" not in table:
            return [(where, own)]
        try:
            recipe = recipes.find(table["recipe"], where)
        except recipes.RecipeError as e:
            raise StudyError(str(e)) from None
        return [(f"recipe {recipe.name} ({recipe.path.name}, named in {where})", recipe.keys),
                (where, own)]

    def expectations(self) -> list[Expectation]:
        """Every learning expectation of the study, fast tier first."""
        fast = self.fast
        out = [Expectation(self.name, "fast", v, k, val, fast.get("seeds", self.seeds),
                           fast.get("steps"))
               for v, table in fast.get("expect", {}).items() for k, val in table.items()]
        out += [Expectation(self.name, "full", v, k, val, self.seeds, None)
                for v, table in self.expect.items() for k, val in table.items()]
        return out


def available() -> dict[str, Path]:
    """Study name -> file, for every studies/*.toml."""
    return {p.stem: p for p in sorted(STUDIES_DIR.glob("*.toml"))}


def listing(width: int | None = None) -> str:
    """Every available study with its question, for `make study` without a NAME; wrapped to
    `width` columns when given."""
    lines = ["Available studies (make study NAME=<name>):"]
    names = available()
    pad = max(map(len, names), default=0) + 4
    for name, path in names.items():
        try:
            study = load(path)
            question = study.question + (" [adaptive]" if study.adaptive is not None else "")
        except StudyError as e:
            question = f"BROKEN: {e}"
        line = f"  {name:<{pad - 2}}{' '.join(question.split())}"
        lines += (textwrap.wrap(line, max(width, pad + 30), subsequent_indent=" " * pad)
                  if width else [line])
    return "\n".join(lines)


def find(name: str | None) -> StudyFile:
    """Load the study called `name` in studies/, or the study file at path `name` (one ending
    in .toml), or raise a StudyError that lists the available ones."""
    studies = available()
    if not name:
        raise StudyError("no study named.\n" + listing())
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise StudyError(f"study file {name}: no such file")
        return load(path)
    if name not in studies:
        raise StudyError(f"unknown study '{name}'{did_you_mean(name, studies)}.\n" + listing())
    return load(studies[name])


def load(path: Path) -> StudyFile:
    """Parse and validate one study file; every error names the file, the key and the value."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{path.name}: not valid TOML: {e}") from None
    where = path.name
    if (problem := unknown_key(data, STUDY_KEYS)) is not None:
        raise StudyError(f"{where}: {problem}")
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise StudyError(f"{where}: key 'question': {question!r} must be a non-empty string")
    seeds = data.get("seeds", 20)
    if not is_positive_int(seeds):
        raise StudyError(f"{where}: key 'seeds': {seeds!r} must be a positive integer")
    seed_chunk = data.get("seed_chunk")
    if seed_chunk is not None and not is_positive_int(seed_chunk):
        raise StudyError(f"{where}: key 'seed_chunk': {seed_chunk!r} must be a positive integer")
    base = _table(data.get("base", {}), f"{where}: key 'base'")
    variants = _table(data.get("variants"), f"{where}: key 'variants'")
    if not variants:
        raise StudyError(f"{where}: key 'variants': needs at least one [variants.NAME] table")
    for name, overrides in variants.items():
        if (problem := variant_name_problem(name)) is not None:
            raise StudyError(f"{where}: [variants.{name!r}]: variant name {name!r}: {problem}")
        _table(overrides, f"{where}: key 'variants.{name}'")
    baseline = data.get("baseline", "baseline")
    if baseline not in variants:
        raise StudyError(f"{where}: key 'baseline': {baseline!r} is not a variant "
                         f"(variants: {', '.join(variants)})")
    margin = data.get("margin", MARGIN)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 < margin < 0.5:
        raise StudyError(f"{where}: key 'margin': {margin!r} must be a number between 0 and "
                         "0.5 (a distance from P(improvement) = 1/2)")
    final_window = data.get("final_window")
    if final_window is not None and (isinstance(final_window, bool)
                                     or not isinstance(final_window, int) or final_window < 1):
        raise StudyError(f"{where}: key 'final_window': {final_window!r} must be a whole "
                         "number of evaluations, at least 1")
    adaptive = _adaptive(data, where, float(margin))
    commit_weights = data.get("commit_weights", False)
    if not isinstance(commit_weights, bool):
        raise StudyError(f"{where}: key 'commit_weights': {commit_weights!r} must be true or "
                         "false")
    expect = _table(data.get("expect", {}), f"{where}: key 'expect'")
    fast = _table(data.get("fast", {}), f"{where}: key 'fast'")
    study = StudyFile(path.stem, path, " ".join(question.split()), seeds, baseline, base,
                      variants, expect, fast, seed_chunk, float(margin), final_window,
                      adaptive, commit_weights)
    try:
        study.configs()
        validate_expectations(expect, fast, variants, where)
    except (ConfigError, ExpectationError) as e:
        raise StudyError(str(e)) from None
    if (steps := fast.get("steps")) is not None:
        try:
            study.configs(steps=steps)
        except ConfigError as e:
            raise StudyError(f"{e} (with [fast] steps = {steps})") from None
    return study


ADAPTIVE_KEYS = ("stage", "max_seeds", "spending")
"""The keys of a study file's [adaptive] table (dqn.stats.sequential.Design's fields)."""


def _adaptive(data: dict[str, Any], where: str, margin: float) -> dict[str, Any] | None:
    """The [adaptive] table, checked as a design (with the study's margin), or None."""
    if "adaptive" not in data:
        return None
    table = _table(data["adaptive"], f"{where}: key 'adaptive'")
    if "seeds" in data:
        raise StudyError(f"{where}: key 'seeds': {data['seeds']!r} cannot go with [adaptive], "
                         "whose stage and max_seeds choose the seed counts")
    if (problem := unknown_key(table, ADAPTIVE_KEYS)) is not None:
        raise StudyError(f"{where}: [adaptive]: {problem}")
    try:
        Design.from_dict(table | {"margin": margin})
    except (TypeError, ValueError) as e:
        raise StudyError(f"{where}: [adaptive] {e}") from None
    return table


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """--set KEY=VALUE items as {key: value}: VALUE is read as a TOML value (3e-4, true,
    [128, 128], "x"), else kept as a string (CartPole-v0). The keys are checked with the
    config, where an unknown one gets a did-you-mean."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, eq, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq or not key or not raw:
            raise StudyError(f"command line: --set {item!r}: expected KEY=VALUE, e.g. "
                             "--set lr=3e-4")
        try:
            out[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw
    return out


def settings_label(overrides: dict[str, Any]) -> str:
    """A folder-name suffix naming command-line settings, e.g. "lr_0.0003-total_steps_1e+05"
    ("" for none): letters, digits and _ . + - only."""
    parts = []
    for key, value in overrides.items():
        text = "x".join(map(str, value)) if isinstance(value, list) else (
            f"{value:g}" if isinstance(value, float) else str(value))
        parts.append(f"{key}_{re.sub(r'[^A-Za-z0-9_.+-]', '', text)}")
    return "-".join(parts)


def _table(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StudyError(f"{what}: {value!r} must be a table")
    return value
