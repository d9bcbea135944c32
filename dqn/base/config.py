"""The one configuration of a DQN run: a frozen dataclass whose field names are study-file keys.

Defaults are the baseline agent, chosen by studies/baseline_sweep.toml and
studies/baseline_confirm.toml: the classic Keras exercise's recipe (train every 4 steps on
batches of 32 from a 5,000-transition memory, MSE loss, epsilon decaying per step) with hard
target copies every 25 steps, a dueling head with max aggregation, an epsilon floor of 0.01 and
gamma 0.995. Every knob is one typed field, documented right below it (`python -m dqn config`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing
from dataclasses import dataclass
from typing import Any, Literal

from dqn.base import env_facts, keys
from dqn.base.env_facts import ENV_IDS
from dqn.base.names import ALIASES, did_you_mean, is_positive_int


class ConfigError(ValueError):
    """A bad configuration value or key; the message names the source, the key and the value.

    `keys` are the config keys involved (two for a relation such as learning_starts <
    total_steps), so a caller merging several sources can blame the one that set them.
    """

    def __init__(self, message: str, keys: typing.Iterable[str] = ()) -> None:
        super().__init__(message)
        self.keys = tuple(keys)


@dataclass(frozen=True)
class Config:
    # environment
    env_id: str = "CartPole-v1"
    """Gymnasium id ("Id-v0", "module:Id-v0") or "module:Class"; see dqn.base.env_facts."""
    total_steps: int = 50_000
    """Environment steps per seed (lockstep steps, autoreset steps included)."""
    device: str = "auto"
    """Torch device: auto (CUDA when available, else CPU), cpu, cuda or cuda:N."""
    env_backend: Literal["auto", "batched", "gymnasium"] = "auto"
    """Envs batched on the device (dqn.core.classic; auto: where there is one) or gymnasium's."""
    return_range: tuple[float, ...] = ()
    """[low, high] of an episode's return, for an env the project does not know (normalising)."""

    # network
    hidden: tuple[int, ...] = (64, 64)
    """Sizes of the hidden layers of the Q-network."""
    activation: Literal["relu", "leaky_relu", "tanh"] = "relu"
    """Activation after each hidden layer."""
    batchnorm: bool = False
    """BatchNorm on the input and after each hidden linear layer (the classic notebook's net)."""
    batchnorm_backward: Literal["autograd", "manual"] = "autograd"
    """BatchNorm's training pass by autograd or written out (dqn.core.batchnorm: faster)."""
    dueling: bool = True
    """Dueling head: Q = V + A - agg(A) on top of the hidden layers."""
    dueling_aggregation: Literal["mean", "max"] = "max"
    """How the dueling head centres the advantages (only used when dueling is on)."""
    noisy: bool = False
    """Noisy networks: factorised Gaussian NoisyLinear layers explore instead of epsilon."""
    noisy_sigma0: float = 0.5
    """Noisy networks: initial noise scale, sigma = sigma0 / sqrt(fan_in)."""
    distributional: bool = False
    """C51: a categorical return distribution per action, cross-entropy loss (core.c51)."""
    n_atoms: int = 51
    """C51: atoms of the distribution, evenly spaced from v_min to v_max."""
    v_min: float = 0.0
    """C51: lowest atom; v_min = v_max = 0 derives both from the env's return range and gamma."""
    v_max: float = 0.0
    """C51: highest atom (see v_min)."""

    # target network
    target: Literal["hard_steps", "hard_episodes", "soft", "none"] = "hard_steps"
    """Target network: hard copy every target_period steps or episodes, Polyak (soft), or none."""
    target_period: int = 25
    """Steps (hard_steps) or episodes per seed (hard_episodes) between hard target copies."""
    tau: float = 0.005
    """Polyak rate of the soft target update, applied after every gradient step."""

    # learning rule
    double_dqn: bool = False
    """Double DQN: the online network picks the next action, the target network values it."""
    loss: Literal["huber", "mse"] = "mse"
    """TD loss: Huber (delta 1) or squared error, averaged over each seed's batch."""
    optimizer: Literal["adam", "adamw"] = "adam"
    """Optimizer (torch defaults for betas, eps; adamw uses weight decay 0.01)."""
    lr: float = 1e-3
    """Learning rate."""
    max_grad_norm: float = 0.0
    """Clip each seed's gradient to this global norm; 0 disables clipping."""
    gamma: float = 0.995
    """Discount factor."""
    reward_scale: float = 1.0
    """Multiplier on rewards inside the Bellman target only (0.01 = 'divide by 100')."""
    terminal_masking: bool = True
    """Mask the bootstrap at terminal states; off bootstraps from max Q(s') even there."""
    truncation: Literal["bootstrap", "terminal"] = "bootstrap"
    """At time-limit truncations, bootstrap (correct) or treat them as terminal."""
    n_step: int = 1
    """Rewards summed before bootstrapping: y = sum_{k<n} g^k r_k + g^n max Q(s_n) (core.nstep)."""

    # replay
    buffer_size: int = 5_000
    """Replay capacity per seed, in transitions."""
    batch_size: int = 32
    """Transitions sampled per seed per gradient step."""
    learning_starts: int = 64
    """Environment steps before the first gradient step."""
    train_frequency: int = 4
    """Do gradient steps every this many environment steps."""
    gradient_steps: int = 1
    """Gradient steps each time training happens."""
    clear_memory_each_episode: bool = False
    """Empty a seed's replay memory whenever one of its episodes ends."""
    store_probability: float = 1.0
    """Keep each transition in replay with this probability."""
    prioritized_replay: bool = False
    """Sample transitions in proportion to (|TD error| + eps)^alpha, IS-weighted (core.priority)."""
    priority_alpha: float = 0.6
    """Prioritized replay: how strongly priorities shape sampling (0 = uniform)."""
    priority_beta_start: float = 0.4
    """Prioritized replay: importance-sampling exponent at the start, annealed linearly to 1."""
    priority_eps: float = 1e-6
    """Prioritized replay: added to |TD error| so no transition's priority is 0."""

    # exploration
    epsilon_schedule: Literal["linear", "exp_step", "exp_episode"] = "exp_step"
    """Epsilon schedule: linear in steps, exponential in steps, or exponential in episodes."""
    epsilon_start: float = 1.0
    """Epsilon at the start."""
    epsilon_end: float = 0.01
    """Final epsilon (linear) or floor (exponential)."""
    epsilon_decay: float = 2_000.0
    """Linear: steps to reach epsilon_end; exponential: time constant in steps or episodes."""

    # evaluation and logging
    eval_every: int = 2_500
    """Greedy evaluation every this many environment steps (and at the last step)."""
    eval_episodes: int = 5
    """Greedy episodes per evaluation, on separate eval envs."""
    log_every: int = 500
    """Environment steps between diagnostics rows (means over the interval)."""

    def __post_init__(self) -> None:
        # canonical types, so Config(epsilon_decay=10_000) and a study's 10000.0 hash alike
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
            elif f.name in ("hidden", "return_range") and isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        errors = _range_errors(self)
        if errors:
            raise ConfigError("; ".join(text for _, text in errors),
                              keys=[k for keys, _ in errors for k in keys])

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved config as JSON-friendly plain values."""
        d = dataclasses.asdict(self)
        d["hidden"], d["return_range"] = list(self.hidden), list(self.return_range)
        return d

    def hash(self) -> str:
        """A short stable hash of the resolved config (used to recognise finished results). Keys
        added later count only when set away from LATER_DEFAULTS: older results keep theirs."""
        d = {k: v for k, v in self.to_dict().items()
             if k not in LATER_DEFAULTS or v != LATER_DEFAULTS[k]}
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def replace(self, **overrides: Any) -> Config:
        """A copy with validated overrides."""
        return from_dict({**self.to_dict(), **overrides})


LATER_DEFAULTS: dict[str, Any] = {
    "n_step": 1, "prioritized_replay": False, "priority_alpha": 0.6, "priority_beta_start": 0.4,
    "priority_eps": 1e-6, "noisy": False, "noisy_sigma0": 0.5, "env_backend": "auto",
    "batchnorm_backward": "autograd", "return_range": [], "distributional": False,
    "n_atoms": 51, "v_min": 0.0, "v_max": 0.0}
"""Config keys added after results were committed, with the defaults that mean 'off'."""

FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Config)}
_HINTS = typing.get_type_hints(Config)


def field_docs() -> dict[str, str]:
    """Each config key's one-line docstring, read from the class source."""
    return keys.field_docs(Config)


BATCHED_ENVS = ("CartPole-v1", "CartPole-v0", "Acrobot-v1", "MountainCar-v0")  # classic.KINDS
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")  # RELATED: keys whose range depends on another
RELATED = {"env_backend": "env_id", "batchnorm_backward": "noisy", "buffer_size": "batch_size",
           "batch_size": "batchnorm", "learning_starts": "total_steps",
           "epsilon_end": "epsilon_start", "v_max": "v_min"}


def _range_errors(c: Config) -> list[tuple[tuple[str, ...], str]]:
    """Impossible or out-of-range settings: (keys involved, text naming the key and value)."""
    checks: list[tuple[str, bool, str]] = [
        ("env_id", env_facts.resolve(c.env_id) is not None,
         "is neither a registered gymnasium id nor a module:Class entry point"
         + did_you_mean(c.env_id, ENV_IDS) + " (the project knows "
         + ", ".join(map(repr, ENV_IDS)) + ")"),
        ("return_range", bool(c.return_range) == (c.env_id not in ENV_IDS)
         or env_facts.resolve(c.env_id) is None, _return_range_rule(c)),
        ("total_steps", c.total_steps > 0, "must be > 0"),
        ("hidden", len(c.hidden) >= 1 and all(h > 0 for h in c.hidden),
         "must be a non-empty list of positive sizes"),
        ("target_period", c.target_period > 0, "must be > 0"),
        ("tau", 0.0 < c.tau <= 1.0, "must be in (0, 1]"),
        ("lr", c.lr >= 0.0 and math.isfinite(c.lr), "must be >= 0 and finite"),
        ("max_grad_norm", c.max_grad_norm >= 0.0, "must be >= 0 (0 disables clipping)"),
        ("gamma", 0.0 <= c.gamma <= 1.0, "must be in [0, 1]"),
        ("n_step", 1 <= c.n_step <= 100, "must be in [1, 100]"),
        ("reward_scale", math.isfinite(c.reward_scale), "must be finite"),
        ("buffer_size", c.buffer_size >= c.batch_size, "must be >= batch_size"),
        ("batch_size", c.batch_size >= (2 if c.batchnorm else 1),
         "must be > 0 (>= 2 with batchnorm: batch statistics need two samples)"),
        ("learning_starts", 0 <= c.learning_starts < c.total_steps,
         f"must be >= 0 and smaller than total_steps ({c.total_steps})"),
        ("train_frequency", c.train_frequency > 0, "must be > 0"),
        ("gradient_steps", c.gradient_steps > 0, "must be > 0"),
        ("store_probability", 0.0 < c.store_probability <= 1.0, "must be in (0, 1]"),
        ("priority_alpha", 0.0 <= c.priority_alpha <= 1.0, "must be in [0, 1]"),
        ("priority_beta_start", 0.0 <= c.priority_beta_start <= 1.0, "must be in [0, 1]"),
        ("priority_eps", c.priority_eps > 0.0 and math.isfinite(c.priority_eps),
         "must be > 0"),
        ("epsilon_start", 0.0 <= c.epsilon_start <= 1.0, "must be in [0, 1]"),
        ("epsilon_end", 0.0 <= c.epsilon_end <= c.epsilon_start,
         f"must be in [0, epsilon_start={c.epsilon_start}]"),
        ("epsilon_decay", c.epsilon_decay > 0, "must be > 0"),
        ("noisy_sigma0", c.noisy_sigma0 > 0 and math.isfinite(c.noisy_sigma0), "must be > 0"),
        ("eval_every", c.eval_every > 0, "must be > 0"),
        ("eval_episodes", c.eval_episodes > 0, "must be > 0"),
        ("log_every", c.log_every > 0, "must be > 0"),
        ("device", bool(DEVICE.fullmatch(c.device)), "must be auto, cpu, cuda or cuda:N"),
        ("env_backend", c.env_backend != "batched" or c.env_id in BATCHED_ENVS,
         f"has no batched version of {c.env_id} (those: {', '.join(BATCHED_ENVS)})"),
        ("batchnorm_backward", c.batchnorm_backward == "autograd" or not c.noisy,
         "cannot be set with noisy = true (noisy BatchNorm nets train by autograd)"),
        ("n_atoms", 2 <= c.n_atoms <= 1001, "must be in [2, 1001]"),
        ("v_max", (c.v_min == c.v_max == 0.0) or (c.v_min < c.v_max and math.isfinite(
            c.v_max - c.v_min)), f"must be finite and above v_min ({c.v_min}), or both 0 "
         "(derived from the environment)"),
        ("return_range", not c.return_range or (len(c.return_range) == 2 and math.isfinite(
            c.return_range[1] - c.return_range[0]) and c.return_range[0] < c.return_range[1]),
         "must be [low, high] with low < high"),
    ]
    if c.distributional:  # C51 has its own loss and trains by autograd
        for key, ok in (("loss", c.loss == FIELDS["loss"].default),
                        ("batchnorm_backward", c.batchnorm_backward == "autograd")):
            checks.append((key, ok, "cannot be set with distributional = true (C51 minimises "
                           "a cross-entropy, by autograd)"))
    errors = [((k, *([RELATED[k]] if k in RELATED else [])), f"key '{k}': {getattr(c, k)!r} {msg}")
              for k, ok, msg in checks if not ok]
    # noisy networks explore by their noise (epsilon is 0): an epsilon setting beside them
    # would be silently ignored, so it is an error
    if c.noisy and (set_eps := [k for k in EPSILON_KEYS if getattr(c, k) != FIELDS[k].default]):
        errors.append((("noisy", *set_eps), f"key '{set_eps[0]}': {getattr(c, set_eps[0])!r} "
                       "cannot be set with noisy = true (noisy networks explore by their "
                       "noise; epsilon is 0)"))
    return errors


def _return_range_rule(c: Config) -> str:
    if c.env_id in ENV_IDS:
        facts = env_facts.ENVS[c.env_id]
        return (f"is only for environments the project does not know ({c.env_id}'s is "
                f"[{facts.min_return:g}, {facts.max_return:g}])")
    return (f"must be set for {c.env_id}, which the project does not know: [low, high] of an "
            "episode's return (scores and the AUC are normalised by it)")


EPSILON_KEYS = ("epsilon_schedule", "epsilon_start", "epsilon_end", "epsilon_decay")


def from_dict(overrides: dict[str, Any], source: str = "") -> Config:
    """Build a Config from study-file style overrides, validating every key and value.

    `source` (a file name, variant...) prefixes every error message.
    """
    where = f"{source}: " if source else ""
    unknown = [k for k in overrides if k not in FIELDS]
    if unknown:
        k = unknown[0]
        raise ConfigError(
            f"{where}unknown key '{k}' (value {overrides[k]!r}){did_you_mean(k, FIELDS)}",
            keys=[k])
    values = {k: keys.coerce(k, _HINTS[k], v, where, ConfigError) for k, v in overrides.items()}
    try:
        return Config(**values)
    except ConfigError as e:
        raise ConfigError(f"{where}{e}", keys=e.keys) from None


__all__ = ["ALIASES", "Config", "ConfigError", "from_dict", "field_docs", "did_you_mean",
           "is_positive_int"]
