"""Recipes (dqn.run.recipes, recipes/*.toml): every committed recipe is valid, a study's [base] or
variant names one, its own keys override the recipe's, and errors name file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from dqn.base import paths
from dqn.base.config import Config
from dqn.run import recipes, studyfile

STUDY = """question = "q"
seeds = 2

[base]
recipe = "{recipe}"
total_steps = 20_000
{base}
[variants.baseline]
{variant}
[variants.other]
gamma = 0.9
"""


@pytest.fixture
def recipe_dir(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "mine.toml").write_text('about = "a test recipe"\nlr = 5e-4\nbatch_size = 64\n'
                                      "buffer_size = 1_000\n")
    (folder / "theirs.toml").write_text('about = "another"\nlr = 1e-2\n')
    monkeypatch.setattr(paths, "RECIPES_DIR", folder)
    return folder


def study(tmp_path: Path, recipe: str = "mine", base: str = "", variant: str = ""):
    path = tmp_path / "s.toml"
    path.write_text(STUDY.format(recipe=recipe, base=base, variant=variant))
    return studyfile.load(path)


@pytest.mark.parametrize("name", list(recipes.available()))
def test_every_committed_recipe_is_a_valid_config_with_its_source(name):
    r = recipes.load(recipes.available()[name])
    assert r.about and "about" not in r.keys
    config = Config(**{**r.keys, "hidden": tuple(r.keys.get("hidden", Config.hidden))})
    assert all(getattr(config, k) == (tuple(v) if k == "hidden" else v)
               for k, v in r.keys.items())


def test_the_recipes_the_atlas_needs_are_committed():
    assert {"tuned_default", "notebook_a", "notebook_b", "notebook_c", "notebook_d",
            "cleanrl"} <= set(recipes.available())


def test_a_recipe_sets_keys_that_the_study_then_overrides(tmp_path, recipe_dir):
    s = study(tmp_path, base="batch_size = 32\n", variant="recipe = \"theirs\"\n")
    configs = s.configs()
    # [base]: the recipe's lr and buffer, the study's own batch size and steps
    assert (configs["other"].lr, configs["other"].batch_size,
            configs["other"].buffer_size, configs["other"].total_steps) == (
        5e-4, 32, 1_000, 20_000)
    assert configs["other"].gamma == 0.9
    # a variant naming another recipe: that recipe's keys over [base]'s
    assert configs["baseline"].lr == 1e-2 and configs["baseline"].batch_size == 32


def test_an_unknown_recipe_names_file_key_and_value(tmp_path, recipe_dir):
    with pytest.raises(studyfile.StudyError) as err:
        study(tmp_path, recipe="mien")
    msg = str(err.value)
    assert "s.toml [base]: key 'recipe': 'mien' is not a recipe" in msg
    assert "did you mean 'mine'" in msg


def test_a_broken_recipe_names_its_file_key_and_value(tmp_path, recipe_dir):
    (recipe_dir / "bad.toml").write_text('about = "x"\nlr = "fast"\n')
    with pytest.raises(studyfile.StudyError, match=r"bad\.toml: key 'lr': 'fast'"):
        study(tmp_path, recipe="bad")
    (recipe_dir / "silent.toml").write_text("lr = 1e-3\n")
    with pytest.raises(studyfile.StudyError, match=r"silent\.toml: key 'about'"):
        study(tmp_path, recipe="silent")


def test_a_relation_broken_by_the_study_is_blamed_on_the_study(tmp_path, recipe_dir):
    """batch_size 2,000 against the recipe's 1,000-transition memory: the study set it."""
    with pytest.raises(studyfile.StudyError, match=r"s\.toml \[base\]: .*'buffer_size'"):
        study(tmp_path, base="batch_size = 2_000\n")


def test_recipes_command_lists_each_recipe_with_its_source(capsys):
    from dqn.cli.main import main

    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in recipes.available():
        assert name in out
    assert "deep-RL demo" in out
