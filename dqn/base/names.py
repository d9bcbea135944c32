"""Names users type: did-you-mean for keys and names, including the names other DQN codebases
give our config keys, the unknown-key message and the positive-integer check shared by every
validator."""

from __future__ import annotations

import difflib
import typing
from typing import Any


def is_positive_int(value: Any) -> bool:
    """An int > 0 that is not a bool (TOML and JSON booleans are ints to Python)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


ALIASES = {
    # Stable-Baselines3 / RL Zoo
    "learning_rate": "lr", "train_freq": "train_frequency",
    "target_update_interval": "target_period", "exploration_final_eps": "epsilon_end",
    "exploration_initial_eps": "epsilon_start", "exploration_fraction": "epsilon_decay",
    "net_arch": "hidden", "activation_fn": "activation", "total_timesteps": "total_steps",
    "n_timesteps": "total_steps", "env": "env_id", "optimizer_class": "optimizer",
    # CleanRL
    "target_network_frequency": "target_period", "start_e": "epsilon_start",
    "end_e": "epsilon_end", "env-id": "env_id", "double_q": "double_dqn",
    # Dopamine
    "target_update_period": "target_period", "update_period": "train_frequency",
    "min_replay_history": "learning_starts", "epsilon_train": "epsilon_end",
    "epsilon_decay_period": "epsilon_decay", "replay_capacity": "buffer_size",
}
"""Names other DQN codebases give our keys, for did-you-mean (never accepted as keys)."""


def did_you_mean(key: str, options: typing.Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the option another codebase calls `key` (ALIASES), else the
    closest spelling, or ''."""
    options = list(options)
    if ALIASES.get(key) in options:
        return f" (did you mean '{ALIASES[key]}'? other codebases call it {key})"
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_key(table: typing.Mapping[str, Any], known: typing.Iterable[str]) -> str | None:
    """"unknown key 'k' (value v)" with a did-you-mean for the first key of `table` that is not
    in `known`, or None when every key is known (each validator prefixes where it looked)."""
    known = list(known)
    for key, value in table.items():
        if key not in known:
            return f"unknown key '{key}' (value {value!r}){did_you_mean(key, known)}"
    return None
