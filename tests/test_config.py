"""Config validation: unknown keys, wrong types, out-of-range values, docs, freezing, hashing."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from dqn.base.config import ALIASES, FIELDS, Config, ConfigError, field_docs, from_dict
from dqn.base.names import unknown_key

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("gama", "gamma"), ("batchsize", "batch_size"), ("target_perod", "target_period"),
     ("duelling", "dueling"), ("learning_start", "learning_starts"),
     # the names SB3 / RL Zoo, CleanRL and Dopamine use for our keys
     ("learning_rate", "lr"), ("train_freq", "train_frequency"),
     ("target_update_interval", "target_period"), ("exploration_final_eps", "epsilon_end"),
     ("net_arch", "hidden"), ("target_network_frequency", "target_period"),
     ("total_timesteps", "total_steps"), ("min_replay_history", "learning_starts")],
)
def test_unknown_key_names_it_and_suggests_the_closest(key, suggestion):
    with pytest.raises(ConfigError) as err:
        from_dict({"gamma": 0.9, key: 1}, source="studies/x.toml")
    msg = str(err.value)
    assert msg.startswith("studies/x.toml: ")
    assert f"'{key}'" in msg
    assert f"did you mean '{suggestion}'?" in msg


def test_unknown_key_without_a_close_match_has_no_suggestion():
    with pytest.raises(ConfigError) as err:
        from_dict({"zzzzzz": 1})
    assert "'zzzzzz'" in str(err.value) and "did you mean" not in str(err.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("batch_size", "64"),  # string for int
        ("batch_size", 64.0),  # float for int
        ("total_steps", True),  # bool is not an int here
        ("batchnorm", 1),  # int for bool
        ("dueling", "true"),  # string for bool
        ("lr", "0.001"),  # string for float
        ("gamma", False),  # bool for float
        ("loss", "l1"),  # bad literal
        ("env_id", "Pong-v5"),
        ("target", "Hard_steps"),
        ("hidden", [64, 64.0]),
        ("hidden", 64),
        ("device", 0),
    ],
)
def test_wrong_type_names_key_and_value(key, value):
    with pytest.raises(ConfigError) as err:
        from_dict({key: value})
    msg = str(err.value)
    assert f"key '{key}'" in msg
    assert repr(value) in msg


def test_ints_are_accepted_for_floats_and_lists_for_hidden():
    c = from_dict({"lr": 1, "epsilon_decay": 500, "hidden": [32, 16]})
    assert c.lr == 1.0 and isinstance(c.lr, float)
    assert isinstance(c.epsilon_decay, float)
    assert c.hidden == (32, 16)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"gamma": 1.5}, "gamma"),
        ({"gamma": -0.1}, "gamma"),
        ({"lr": -1}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"buffer_size": 32, "batch_size": 64}, "buffer_size"),
        ({"total_steps": 1000, "learning_starts": 1000}, "learning_starts"),
        ({"total_steps": 1000, "learning_starts": 5000}, "learning_starts"),
        ({"store_probability": 0.0}, "store_probability"),
        ({"store_probability": 1.5}, "store_probability"),
        ({"epsilon_start": 0.2, "epsilon_end": 0.5}, "epsilon_end"),
        ({"batchnorm": True, "batch_size": 1}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"tau": 0.0}, "tau"),
        ({"target_period": 0}, "target_period"),
        ({"hidden": []}, "hidden"),
        ({"hidden": [64, 0]}, "hidden"),
        ({"max_grad_norm": -1.0}, "max_grad_norm"),
        ({"epsilon_decay": 0}, "epsilon_decay"),
        ({"device": "tpu"}, "device"),
        ({"eval_episodes": 0}, "eval_episodes"),
    ],
)
def test_out_of_range_names_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        from_dict(overrides, source="v1")
    msg = str(err.value)
    assert msg.startswith("v1: ")
    assert f"key '{key}'" in msg
    assert repr(getattr_after_coercion(key, overrides[key])) in msg
    # and only that key: every other key in the message would be a false accusation
    others = [k for k in FIELDS if k != key and f"key '{k}'" in msg]
    assert others == []


def getattr_after_coercion(key: str, value):
    """The value as the message shows it (ints given for floats appear as floats)."""
    if typing.get_type_hints(Config)[key] is float:
        return float(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def test_the_constructor_validates_too():
    with pytest.raises(ConfigError, match="key 'gamma'"):
        Config(gamma=2.0)
    with pytest.raises(ConfigError, match="key 'tau'"):
        Config().replace(tau=-1.0)


def test_batchnorm_needs_two_samples_but_batch_two_is_fine():
    assert from_dict({"batchnorm": True, "batch_size": 2}).batch_size == 2
    assert from_dict({"batch_size": 1}).batch_size == 1


def test_every_field_has_a_one_line_docstring():
    docs = field_docs()
    assert set(docs) == set(FIELDS)
    for key, doc in docs.items():
        assert doc and "\n" not in doc, key
        assert len(doc) < 100, key


def test_config_is_frozen():
    c = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.gamma = 0.5  # type: ignore[misc]


def _alternative(key: str, value):
    """A different valid value for one field."""
    hint = typing.get_type_hints(Config)[key]
    if typing.get_origin(hint) is typing.Literal:
        return next(v for v in typing.get_args(hint) if v != value)
    if hint is bool:
        return not value
    if key == "hidden":
        return (32,)
    if key == "device":
        return "cpu" if value != "cpu" else "auto"
    if key == "env_id":
        return "CartPole-v0" if value != "CartPole-v0" else "CartPole-v1"
    if key == "v_min":  # below the default v_max = 0
        return -1.0
    if hint is int:
        return value + 1
    return value * 0.5 if value else 1.0


def test_hash_changes_with_every_field():
    base = Config()
    hashes = {base.hash()}
    alone = [k for k in FIELDS if k != "return_range"]  # only valid with an unknown env: below
    for key in alone:
        changed = base.replace(**{key: _alternative(key, getattr(base, key))})
        assert getattr(changed, key) != getattr(base, key)
        hashes.add(changed.hash())
        assert changed.hash() != base.hash(), key
    assert len(hashes) == len(alone) + 1
    toy = from_dict({"env_id": "toy_env:Toy-v0", "return_range": [0, 10]})
    assert toy.replace(return_range=[0, 11]).hash() != toy.hash()


def test_hash_is_stable():
    a, b = Config(), from_dict({})
    assert a.hash() == b.hash() == Config().hash()
    assert len(a.hash()) == 12
    # ints for floats and lists for tuples resolve to the same config
    assert Config(lr=1, hidden=[64, 64]).hash() == from_dict({"lr": 1.0}).hash()
    assert Config().replace(epsilon_decay=int(a.epsilon_decay)).hash() == a.hash()
    # independent of the process (no str hashing salt in it)
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c",
         "from dqn.base.config import Config; print(Config(gamma=0.9).hash())"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True,
    )
    assert out.stdout.strip() == Config(gamma=0.9).hash()


def test_to_dict_round_trips():
    c = from_dict({"hidden": [8, 4], "batchnorm": True, "gamma": 0.9})
    assert from_dict(c.to_dict()) == c
    assert c.to_dict()["hidden"] == [8, 4]


def test_every_alias_names_a_real_key_and_is_not_one():
    assert set(ALIASES.values()) <= set(FIELDS)
    assert not set(ALIASES) & set(FIELDS)


def test_unknown_key_names_the_first_unknown_key_its_value_and_a_suggestion() -> None:
    assert unknown_key({"seeds": 3, "question": "q"}, ["seeds", "question"]) is None
    assert unknown_key({"seeds": 3, "sedes": 4, "x": 1}, ["seeds"]) == (
        "unknown key 'sedes' (value 4) (did you mean 'seeds'?)")
    assert unknown_key({"learning_rate": 0.1}, ["lr", "gamma"]) == (
        "unknown key 'learning_rate' (value 0.1) (did you mean 'lr'? other codebases call it "
        "learning_rate)")
