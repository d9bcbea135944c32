"""Noisy networks (Fortunato et al. 2018): factorised Gaussian NoisyLinear layers, per seed.

Every linear layer y = x W + b of a noisy network has a mean (mu_W, mu_b) and a scale
(sigma_W, sigma_b), and acts with

    W = mu_W + sigma_W * (f(eps_in) f(eps_out)^T),   b = mu_b + sigma_b * f(eps_out),
    f(x) = sign(x) sqrt(|x|),  eps_in (in,), eps_out (out,) standard normal,

so a layer draws in + out numbers, not in * out. Initialisation: mu as torch.nn.Linear
(U(-1/sqrt(in), 1/sqrt(in))), sigma = sigma0 / sqrt(in).

Layout: a noisy network's flat parameters (S, P) are the plain network's (S, P_base), mu, then
sigma (S, P_lin) for its linear parameters, which come first in the plain layout
(netspec.NetSpec.param_shapes), in the same order. `effective` turns them and a noise draw into
a plain network's parameters, so the plain forward pass serves: the mean network (no noise) is
simply the first P_base columns.

Noise is drawn per seed from the seed's own streams (dqn.core.seeding "noise_act", "noise_learn"):
afresh at every environment step for acting, and at every gradient step, one draw for the online
network (its Q(s, a) and, with double DQN, its choice of a') and an independent one for the
target network. Greedy evaluation uses the mean network.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch

from dqn.core.netspec import NetSpec


@functools.cache  # called on every forward pass: one NetSpec (and its cached offsets) per spec
def base(spec: NetSpec) -> NetSpec:
    """The plain network a noisy one acts as."""
    return dataclasses.replace(spec, noisy=False)


@functools.cache
def linear_size(spec: NetSpec) -> int:
    """P_lin: how many of the plain network's parameters are linear weights and biases."""
    return sum(fan_in * fan_out + fan_out for _, fan_in, fan_out in spec.linear_layers())


def noise_size(spec: NetSpec) -> int:
    """Standard normals one noise draw takes: in + out for each linear layer."""
    return sum(fan_in + fan_out for _, fan_in, fan_out in spec.linear_layers())


def init_sigma(spec: NetSpec, S: int, sigma0: float, device: torch.device) -> torch.Tensor:
    """sigma (S, P_lin): sigma0 / sqrt(in) for every weight and bias of a layer."""
    parts = [torch.full((fan_in * fan_out + fan_out,), sigma0 / math.sqrt(fan_in))
             for _, fan_in, fan_out in spec.linear_layers()]
    return torch.cat(parts).expand(S, -1).clone().to(device)  # (S, P_lin)


def scaled(x: torch.Tensor) -> torch.Tensor:
    """f(x) = sign(x) sqrt(|x|)."""
    return x.sign() * x.abs().sqrt()


def noise_matrix(spec: NetSpec, eps: torch.Tensor) -> torch.Tensor:
    """The factorised noise (S, P_lin) of every linear weight and bias, in layout order, from a
    draw of standard normals eps (S, noise_size): f(eps_in)_i f(eps_out)_j for W_ij (stored
    (in, out)), f(eps_out)_j for b_j."""
    S, parts, pos = eps.shape[0], [], 0
    for _, fan_in, fan_out in spec.linear_layers():
        e_in = scaled(eps[:, pos:pos + fan_in])  # (S, in)
        e_out = scaled(eps[:, pos + fan_in:pos + fan_in + fan_out])  # (S, out)
        pos += fan_in + fan_out
        parts += [(e_in[:, :, None] * e_out[:, None, :]).reshape(S, -1), e_out]
    return torch.cat(parts, dim=1)


def effective(spec: NetSpec, params: torch.Tensor, eps: torch.Tensor | None) -> torch.Tensor:
    """The plain network's parameters (S, P_base) a noisy network (S, P) acts with under noise
    eps (S, noise_size): mu + sigma * noise on the linear parameters, BatchNorm's unchanged.
    eps None: the mean network (mu)."""
    plain = base(spec)
    P_base, P_lin = plain.n_params, linear_size(plain)
    mu = params[:, :P_base]
    if eps is None:
        return mu
    noisy_part = mu[:, :P_lin] + params[:, P_base:] * noise_matrix(plain, eps)
    return torch.cat([noisy_part, mu[:, P_lin:]], dim=1)
