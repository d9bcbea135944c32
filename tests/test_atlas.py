"""The atlas (atlas.toml, dqn.atlas.spec, dqn.run.atlas, dqn.atlas.table, dqn.atlas.figure): the
plan is validated with file/key/value errors, each column is a study whose variants change exactly
their ablation's keys, cells get the right status, the atlas-wide Holm family matches a hand
computation, and a tiny atlas runs end to end and redraws byte-identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from study_fixtures import memo_train

from dqn.analysis import cache
from dqn.atlas import spec as atlas_spec
from dqn.atlas import table as atlas_table
from dqn.base import paths
from dqn.base.config import EPSILON_KEYS, FIELDS, from_dict
from dqn.cli.main import main
from dqn.run import atlas

PLAN = """about = "a test atlas"
seeds = 3
recipes = ["mine", "gamma_one"]

[envs."CartPole-v1"]
total_steps = 1_000

[ablations.no_target]
label = "no target network"
set = {{ target = "none" }}

[ablations."gamma_1.0"]
label = "gamma 1.0"
set = {{ gamma = 1.0 }}

[ablations.batchnorm]
label = "BatchNorm toggled"
flip = "batchnorm"
{extra}"""


@pytest.fixture
def recipe_dir(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "mine.toml").write_text('about = "mine"\nbatchnorm = true\nloss = "huber"\n'
                                      'epsilon_schedule = "linear"\nepsilon_decay = 500.0\n'
                                      "learning_starts = 100\nbuffer_size = 500\n")
    (folder / "gamma_one.toml").write_text('about = "gamma 1"\ngamma = 1.0\n'
                                           "learning_starts = 100\nbuffer_size = 500\n")
    monkeypatch.setattr(paths, "RECIPES_DIR", folder)
    return folder


def plan(tmp_path: Path, extra: str = "", text: str | None = None) -> Path:
    path = tmp_path / "atlas.toml"
    path.write_text(PLAN.format(extra=extra) if text is None else text)
    return path


def test_the_committed_atlas_and_every_column_are_valid(tmp_path: Path) -> None:
    spec = atlas_spec.load()
    assert len(spec.recipes) >= 4 and len(spec.envs) >= 3 and len(spec.ablations) >= 10
    for recipe, env_id in spec.columns():
        study = atlas.column_study(spec, recipe, env_id, tmp_path)
        assert study.name == f"{recipe}.{env_id}" and study.seeds == spec.seeds
        assert {c.env_id for c in study.configs().values()} == {env_id}


@pytest.mark.parametrize("extra, message", [
    ('colour = "red"\n', "atlas.toml: unknown key 'colour'"),
    ('[ablations.x]\nlabel = "x"\nflip = "lr"\n', "key 'flip': 'lr' is not a true/false"),
    ('[ablations.x]\nlabel = "x"\nflip = "dueling"\nset = { gamma = 0.9 }\n',
     "give exactly one of 'set'"),
    ('[ablations.x]\nlabel = "x"\nset = { learning_rate = 0.1 }\n',
     "unknown key 'learning_rate' (value 0.1) (did you mean 'lr'?"),
    ('[ablations.x]\nlabel = "x"\nset = { gamma = 2.0 }\n', "key 'gamma': 2.0"),
    ('[ablations.x]\nset = { gamma = 0.9 }\n', "[ablations.x]: key 'label': None"),
    ('[ablations.baseline]\nlabel = "b"\nset = { gamma = 0.9 }\n', "each column's own recipe"),
    ('[envs."CartPol-v1"]\ntotal_steps = 10\n', "'CartPol-v1' is not a supported environment"
                                                 " (did you mean 'CartPole-v1'?"),
    ('[envs."Acrobot-v1"]\nenv_id = "CartPole-v1"\n', "key 'env_id': 'CartPole-v1': the "
                                                      "environment is the column's"),
])
def test_bad_plans_name_the_file_the_key_and_the_value(tmp_path: Path, extra: str,
                                                       message: str) -> None:
    text = PLAN.format(extra="")
    text = extra + text if extra.startswith("colour") else text + extra
    with pytest.raises(atlas_spec.AtlasError) as e:
        atlas_spec.load(plan(tmp_path, text=text))
    assert message in str(e.value)


def test_flips() -> None:
    assert atlas_spec.flipped("batchnorm", True) is False
    assert atlas_spec.flipped("dueling", False) is True
    assert atlas_spec.flipped("loss", "huber") == "mse"
    assert atlas_spec.flipped("loss", "mse") == "huber"
    assert atlas_spec.flipped("truncation", "bootstrap") == "terminal"


def test_each_ablation_changes_only_its_keys(tmp_path: Path, recipe_dir: Path) -> None:
    spec = atlas_spec.load(plan(tmp_path, extra='[ablations.noisy]\nlabel = "noisy"\n'
                                                'set = { noisy = true }\n'))
    mine = atlas.ablation_keys(spec, "mine", "CartPole-v1")
    assert mine == {"no_target": {"target": "none"}, "gamma_1.0": {"gamma": 1.0},
                    "batchnorm": {"batchnorm": False},  # the recipe's true, flipped
                    # the recipe's epsilon keys back to their defaults, as noisy requires
                    "noisy": {"noisy": True, "epsilon_schedule": "exp_step",
                              "epsilon_decay": 2_000.0}}
    theirs = atlas.ablation_keys(spec, "gamma_one", "CartPole-v1")
    assert "gamma_1.0" not in theirs  # the recipe's own gamma: no cell
    assert theirs["batchnorm"] == {"batchnorm": True} and theirs["noisy"] == {"noisy": True}
    study = atlas.column_study(spec, "mine", "CartPole-v1", tmp_path / "out")
    configs = study.configs()
    base = configs.pop("baseline")
    assert base.batchnorm and base.loss == "huber" and base.total_steps == 1_000
    for name, config in configs.items():  # every other key is the baseline's
        changed = {k for k in FIELDS if getattr(config, k) != getattr(base, k)}
        assert changed == set(mine[name]) - {k for k in EPSILON_KEYS
                                             if mine[name].get(k) == getattr(base, k)}
    assert "Left out" in atlas.column_text(spec, "gamma_one", "CartPole-v1")


def _summary(variant: str, p_imp: float, p: float, auc_p_imp: float, auc_p: float,
             verdict: str = "baseline", auc_verdict: str = "baseline") -> dict:
    full = {c: np.nan for c in atlas_table.PER_METRIC} | {
        f"auc_{c}": np.nan for c in atlas_table.PER_METRIC}
    return full | {
        "variant": variant, "seeds": 20, "complete": True, "final_iqm": 1.0, "auc_iqm": 0.5,
        "p_improvement": p_imp, "verdict_p": p, "equivalence_p": 0.5,
        "auc_p_improvement": auc_p_imp, "auc_verdict_p": auc_p, "auc_equivalence_p": 0.5,
        "verdict": verdict, "auc_verdict": auc_verdict, "family_size": 8,
        "detectable_effect": 0.3, "underpowered": True, "baseline_at_ceiling": False}


def test_cell_status_and_the_atlas_wide_holm_family(tmp_path: Path, recipe_dir: Path,
                                                    monkeypatch) -> None:
    """Two done cells (no_target, batchnorm under `mine`): their 8 tests' raw p-values are
    0.001, 0.04 (final), 0.2, 0.01 (AUC) and four equivalence p-values of 0.5. Each
    comparison's two nulls exclude each other (no cap-rate test: the summaries name none), so
    Shaffer's multiplier counts the 4 comparisons with a test left, 4 at every difference
    test: 0.001 x 4 = 0.004, 0.01 x 4 = 0.04, 0.04 x 4 = 0.16, 0.2 x 4 = 0.8, the rest 1.
    (Holm would give 0.008, 0.07, 0.24, 1.)"""
    spec = atlas_spec.load(plan(tmp_path))
    out = tmp_path / "out"
    atlas.column_study(spec, "gamma_one", "CartPole-v1", out)  # written, never trained
    atlas.column_study(spec, "mine", "CartPole-v1", out)
    summary = pd.DataFrame([_summary("baseline", np.nan, np.nan, np.nan, np.nan),
                            _summary("no_target", 0.9, 0.001, 0.3, 0.2, "better",
                                     "inconclusive"),
                            _summary("batchnorm", 0.2, 0.04, 0.1, 0.01, "inconclusive",
                                     "worse"),
                            # no p-values (left out of every Holm family), but trained
                            _summary("gamma_1.0", np.nan, np.nan, np.nan, np.nan, "no data",
                                     "no data") | {"equivalence_p": np.nan,
                                                   "auc_equivalence_p": np.nan}])
    monkeypatch.setattr(atlas_table, "column_summary",
                        lambda folder: summary if folder.name.startswith("mine") else None)
    t = atlas_table.cells(spec, out).set_index(["recipe", "ablation"])
    assert t.loc[("mine", "no_target"), "status"] == "done"
    assert t.loc[("gamma_one", "gamma_1.0"), "status"] == "recipe's own setting"
    assert t.loc[("gamma_one", "no_target"), "status"] == "not run"
    assert t.loc[("mine", "no_target"), "verdict_atlas_p_adj"] == pytest.approx(0.004)
    assert t.loc[("mine", "batchnorm"), "verdict_atlas_p_adj"] == pytest.approx(0.16)
    assert t.loc[("mine", "no_target"), "auc_verdict_atlas_p_adj"] == pytest.approx(0.8)
    assert t.loc[("mine", "batchnorm"), "auc_verdict_atlas_p_adj"] == pytest.approx(0.04)
    assert t.loc[("mine", "no_target"), "verdict_atlas"] == "better"
    assert t.loc[("mine", "batchnorm"), "verdict_atlas"] == "inconclusive"
    assert (t["atlas_family_size"] == 4).all()
    # the text heatmap: final / AUC, bold where the atlas-wide family agrees with the column's
    md = atlas_table.markdown(atlas_table.cells(spec, out))
    assert md[0] == "| ablation | mine CartPole | gamma_one CartPole |"
    assert md[2] == "| no target network | **▲** / · |  |"
    assert md[3] == "| gamma 1.0 |  | n/a |"
    assert md[4] == "| BatchNorm toggled | · / **▼** |  |"
    # one variant of the column not trained: no verdicts in it yet (its family is the column's)
    partial = summary[summary["variant"] != "gamma_1.0"]
    monkeypatch.setattr(atlas_table, "column_summary",
                        lambda folder: partial if folder.name.startswith("mine") else None)
    t = atlas_table.cells(spec, out).set_index(["recipe", "ablation"])
    assert t.loc[("mine", "gamma_1.0"), "status"] == "not run"
    assert t.loc[("mine", "no_target"), "status"] == "column incomplete"
    assert t["verdict_atlas"].isna().all()


def test_a_tiny_atlas_end_to_end_and_byte_identical_redraws(tmp_path: Path, recipe_dir: Path,
                                                           monkeypatch, capsys) -> None:
    memo_train(monkeypatch)
    out = tmp_path / "atlas"
    args = ["--atlas-file", str(plan(tmp_path)), "--out", str(out)]
    assert main(["atlas", *args, "--recipes", "gamma_one", "--device", "cpu"]) == 0
    table = atlas_table.read(out / "atlas.csv")
    done = table[table["status"] == "done"]
    assert list(zip(done["recipe"], done["ablation"], strict=True)) == [
        ("gamma_one", "no_target"), ("gamma_one", "batchnorm")]
    assert done["seeds"].tolist() == [3, 3] and (out / "atlas.png").is_file()
    assert "2 done" in capsys.readouterr().out
    used = atlas_table.compute_used(atlas_spec.load(plan(tmp_path)), out).set_index("recipe")
    assert used.loc["gamma_one", "seed_steps"] == 3 * 3 * 1_000  # 3 variants x 3 seeds
    assert used.loc["mine", "seed_steps"] == 0 and used.loc["gamma_one", "devices"] == "cpu"
    drawn = [*out.glob("atlas.*"), *out.glob("*/summary.*")]
    assert len(drawn) == 4  # atlas.csv, atlas.png, the column's summary.csv and .source
    before = {p: p.read_bytes() for p in drawn}
    assert main(["atlas-figures", *args]) == 0  # from the cached summary
    assert {p: p.read_bytes() for p in drawn} == before
    (out / "gamma_one.CartPole-v1" / "summary.source").write_text("stale\n")
    assert main(["atlas-figures", *args]) == 0  # recomputed from the CSVs: the same bytes
    assert {p: p.read_bytes() for p in drawn} == before

    def no_summaries(*args, **kwargs):
        raise AssertionError("a summary whose fingerprint matches is read, not recomputed")
    monkeypatch.setattr(cache, "summarize", no_summaries)
    assert main(["atlas-figures", *args]) == 0
    (out / "gamma_one.CartPole-v1" / "summary.source").write_text("stale\n")
    with pytest.raises(AssertionError, match="is read, not recomputed"):
        main(["atlas-figures", *args])  # a stale fingerprint: recomputed


def test_a_bad_choice_on_the_command_line_trains_nothing(tmp_path: Path, recipe_dir: Path,
                                                         capsys) -> None:
    out = tmp_path / "atlas"
    assert main(["atlas", "--atlas-file", str(plan(tmp_path)), "--out", str(out),
                 "--recipes", "mien"]) == 2
    assert "--recipes 'mien' is not one of atlas.toml's recipes (did you mean 'mine'?" in \
        capsys.readouterr().err
    assert not out.exists()


def test_lunar_lander_is_supported() -> None:
    from dqn.base.env_facts import ENVS
    facts = ENVS["LunarLander-v3"]
    assert (facts.episode_limit, facts.threshold) == (1000, 200.0)
    assert (facts.min_return, facts.max_return) == (-500.0, 300.0)
    assert from_dict({"env_id": "LunarLander-v3"}).env_id == "LunarLander-v3"


def test_a_missing_recipe_or_a_bad_option_is_an_error_before_anything_is_written(
        tmp_path: Path, recipe_dir: Path, capsys) -> None:
    out = tmp_path / "atlas"
    text = PLAN.format(extra="").replace('"gamma_one"]', '"gamma_on"]')
    assert main(["atlas", "--atlas-file", str(plan(tmp_path, text=text)), "--out",
                 str(out)]) == 2
    assert ("atlas.toml: key 'recipes': 'gamma_on' is not a recipe (did you mean "
            "'gamma_one'?") in capsys.readouterr().err
    assert main(["atlas", "--atlas-file", str(plan(tmp_path)), "--out", str(out),
                 "--device", "tpu"]) == 2
    assert "key 'device': 'tpu'" in capsys.readouterr().err
    assert not out.exists()
