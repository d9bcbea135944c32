"""Any gymnasium environment with a flat Box observation and Discrete actions: a registered id
("module:Id-v0"), an entry point ("module:Class"), the return_range a study gives one the
project does not know, MountainCar-v0 out of the box, and clear errors before any training."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import dqn.core.train
from dqn.base import env_facts
from dqn.base.config import ConfigError, from_dict
from dqn.cli.main import main
from dqn.core.train import train
from dqn.run import runner, studyfile

pytestmark = pytest.mark.usefixtures("single_thread_torch")

TOY = "toy_env:Toy-v0"  # tests/toy_env.py registers it on import
SHORT = {"total_steps": 600, "learning_starts": 100, "eval_every": 300, "eval_episodes": 2,
         "log_every": 300, "device": "cpu"}


@pytest.mark.parametrize("keys, blamed, needle", [
    ({"env_id": "CartPol-v1"}, "env_id", "did you mean 'CartPole-v1'"),
    ({"env_id": "CartPole"}, "env_id", "neither a registered gymnasium id"),  # no version
    ({"env_id": "no_such_module:Env-v0"}, "env_id", "module:Class"),
    ({"env_id": TOY}, "return_range", "must be set for toy_env:Toy-v0"),
    ({"env_id": "CartPole-v1", "return_range": [0, 10]}, "return_range", "[0, 500]"),
    ({"env_id": TOY, "return_range": [5, 1]}, "return_range", "low < high"),
])
def test_bad_environment_settings_name_the_key(keys, blamed, needle):
    with pytest.raises(ConfigError) as err:
        from_dict(keys, "study.toml")
    assert f"study.toml: key '{blamed}'" in str(err.value) and needle in str(err.value)


@pytest.mark.parametrize("env_id", [TOY, "toy_env:Toy"])
def test_a_registered_id_and_an_entry_point_train(env_id):
    records = train(from_dict({**SHORT, "env_id": env_id, "return_range": [0, 10]}), [0, 1])
    returns = records.evals["return"]
    assert len(returns) == 4 and returns.between(0, 10).all()
    assert set(records.episodes["length"]) == {10}  # the toy's own episode length


def test_mountaincar_is_known_and_batched():
    facts = env_facts.known("MountainCar-v0")
    assert (facts.min_return, facts.max_return, facts.episode_limit) == (-200.0, 0.0, 200)
    assert facts.threshold == -110.0  # gymnasium's reward_threshold
    records = train(from_dict({**SHORT, "env_id": "MountainCar-v0"}), [3])
    assert (records.evals["return"] == -200.0).all()  # 600 steps cannot find the flag


def test_an_environment_dqn_cannot_run_is_rejected_before_training(tmp_path: Path,
                                                                   monkeypatch):
    study = tmp_path / "pendulum.toml"
    study.write_text('question = "q"\nseeds = 1\n[base]\nenv_id = "Pendulum-v1"\n'
                     'return_range = [-2000, 0]\n[variants.baseline]\n')
    monkeypatch.setattr(dqn.core.train, "train", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(studyfile.StudyError, match=r"pendulum.toml \[variants.baseline\]: "
                       "key 'env_id': 'Pendulum-v1' has .* Discrete"):
        runner.run(studyfile.load(study), out_dir=tmp_path / "results", figures=False,
                   progress=False)
    assert not (tmp_path / "results" / "pendulum").exists()


def test_a_study_on_a_user_environment_trains_and_reports(tmp_path: Path):
    study = tmp_path / "toy.toml"
    study.write_text(f'''question = "Does C51 learn a toy environment the project does not know?"
seeds = 3

[base]
env_id = "{TOY}"
return_range = [0, 10]
total_steps = 1500
learning_starts = 100
eval_every = 500
eval_episodes = 2
log_every = 500
device = "cpu"

[variants.baseline]

[variants.c51]
distributional = true
''')
    out = tmp_path / "results"
    assert main(["study", str(study), "--out", str(out)]) == 0
    summary = pd.read_csv(out / "toy" / "summary.csv").set_index("variant")
    for v in ("baseline", "c51"):
        assert 0 <= summary.loc[v, "final_norm_iqm"] <= 1
        assert 0 <= summary.loc[v, "auc_iqm"] <= 1
        assert not math.isnan(summary.loc[v, "solved_fraction"])  # Toy-v0's threshold 9
    assert (out / "toy" / "learning_curves.png").is_file()
    assert main(["report", "--out", str(out), "--findings", str(tmp_path / "f.md")]) == 0
    assert "toy_env:Toy-v0" in (out / "REPORT.md").read_text()
