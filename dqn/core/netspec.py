"""One seed's network architecture (NetSpec) and the layout of S seeds' parameters in one flat
(S, P) tensor: every layer's weight is a view (S, in, out) into it (`unflatten`), each seed's
initial values drawn from its own generator (`init_params`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from dqn.base.config import Config
from dqn.core import c51


@dataclass(frozen=True)
class NetSpec:
    """Architecture of one seed's network; the batched tensors repeat it S times."""

    obs_dim: int
    n_actions: int
    hidden: tuple[int, ...]
    activation: str
    batchnorm: bool
    dueling: bool
    dueling_aggregation: str
    noisy: bool = False  # + a sigma per linear parameter, after the rest (dqn.core.noisy)
    atoms: int = 1  # > 1: C51, `atoms` logits per action on atoms v_min..v_max (dqn.core.c51)
    v_min: float = 0.0
    v_max: float = 0.0

    @staticmethod
    def from_config(config: Config, obs_dim: int, n_actions: int) -> NetSpec:
        atoms, (v_min, v_max) = ((config.n_atoms, c51.value_range(config))
                                 if config.distributional else (1, (0.0, 0.0)))
        return NetSpec(obs_dim, n_actions, config.hidden, config.activation, config.batchnorm,
                       config.dueling, config.dueling_aggregation, config.noisy, atoms, v_min,
                       v_max)

    def linear_layers(self) -> list[tuple[str, int, int]]:
        """(name, fan_in, fan_out) of every linear layer, in forward order."""
        sizes = (self.obs_dim, *self.hidden)
        layers = [(f"fc{i}", a, b) for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False))]
        last = sizes[-1]
        k = self.atoms  # a C51 head has k outputs where a scalar one has 1
        if self.dueling:
            layers += [("value", last, k), ("advantage", last, self.n_actions * k)]
        else:
            layers += [("out", last, self.n_actions * k)]
        return layers

    def bn_sizes(self) -> list[int]:
        """Feature count of each BatchNorm: the input, then each hidden layer."""
        return [self.obs_dim, *self.hidden] if self.batchnorm else []

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-seed shape of every parameter, in the order they sit in the flat buffer."""
        shapes: dict[str, tuple[int, ...]] = {}
        for name, fan_in, fan_out in self.linear_layers():
            shapes[f"{name}.weight"] = (fan_in, fan_out)
            shapes[f"{name}.bias"] = (fan_out,)
        for i, n in enumerate(self.bn_sizes()):
            shapes[f"bn{i}.weight"] = (n,)
            shapes[f"bn{i}.bias"] = (n,)
        if self.noisy:
            for name, fan_in, fan_out in self.linear_layers():
                shapes[f"sigma.{name}.weight"] = (fan_in, fan_out)
                shapes[f"sigma.{name}.bias"] = (fan_out,)
        return shapes

    @functools.cached_property
    def offsets(self) -> dict[str, tuple[int, int, tuple[int, ...]]]:
        """name -> (start, end, shape) inside one seed's row of the flat buffer (computed once:
        every forward pass slices with it)."""
        out, pos = {}, 0
        for name, shape in self.param_shapes().items():
            n = math.prod(shape)
            out[name] = (pos, pos + n, shape)
            pos += n
        return out

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes().values())

    @property
    def n_stats(self) -> int:
        """Length of one seed's BatchNorm running stats: mean then var for each BatchNorm."""
        return 2 * sum(self.bn_sizes())


def unflatten(spec: NetSpec, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Views (S, *shape) into the flat (S, P) buffer; gradients flow back into `flat`."""
    S = flat.shape[0]
    return {name: flat[:, a:b].view(S, *shape) for name, (a, b, shape) in spec.offsets.items()}


def init_params(spec: NetSpec, init_seeds: list[int], device: torch.device) -> torch.Tensor:
    """Flat parameters (S, P), each seed's drawn from its own generator.

    Linear layers follow torch.nn.Linear's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
    weights and biases; BatchNorm starts at weight 1, bias 0. The loop over seeds runs once, here.
    """
    rows = []
    for seed in init_seeds:
        g = torch.Generator().manual_seed(seed)
        parts = []
        for name, shape in spec.param_shapes().items():
            if name.startswith("bn"):
                fill = 1.0 if name.endswith("weight") else 0.0
                parts.append(torch.full((math.prod(shape),), fill))
            else:
                fan_in = shape[0] if name.endswith("weight") else _fan_in(spec, name)
                bound = 1.0 / math.sqrt(fan_in)
                parts.append((torch.rand(math.prod(shape), generator=g) * 2 - 1) * bound)
        rows.append(torch.cat(parts))
    return torch.stack(rows).to(device)  # (S, P)


def _fan_in(spec: NetSpec, param_name: str) -> int:
    layer = param_name.rsplit(".", 1)[0]
    return next(fan_in for name, fan_in, _ in spec.linear_layers() if name == layer)


def init_stats(spec: NetSpec, S: int, device: torch.device) -> torch.Tensor:
    """BatchNorm running stats (S, n_stats): means 0 and variances 1, as torch initialises them."""
    parts = []
    for n in spec.bn_sizes():
        parts += [torch.zeros(S, n), torch.ones(S, n)]
    return torch.cat(parts, dim=1).to(device) if parts else torch.zeros(S, 0, device=device)
