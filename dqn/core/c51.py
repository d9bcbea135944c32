"""C51, the categorical distributional head (Bellemare, Dabney & Munos 2017), as pure functions.

Each action's return is a distribution over K atoms z_0 < ... < z_{K-1}, evenly spaced from
v_min to v_max (`support`); the network gives K logits per action and p_i(s, a) = softmax. The
greedy action maximises the mean Q(s, a) = sum_i z_i p_i(s, a) (`mean`). The target is the
distribution of c r + gamma^m b z under the next state's greedy action, projected back onto
the atoms (`project`); the loss is its cross-entropy with the predicted distribution
(`cross_entropy`), which prioritized replay also uses as the new priority (Hessel et al. 2018).
"""

from __future__ import annotations

import torch

from dqn.base import env_facts
from dqn.base.config import Config


def value_range(config: Config) -> tuple[float, float]:
    """(v_min, v_max) of the support: the config's when set, else from the environment.

    Where each step's reward lies in [r_lo, r_hi] (dqn.base.env_facts) and episodes last at
    most T steps, every discounted return (times reward_scale c) lies in

        c * [min(r_lo, r_lo G), max(r_hi, r_hi G)],   G = sum_{t<T} gamma^t

    which is the support (CartPole-v1 at gamma 0.995: [0, 183.6]). Where only an episode's
    return range is known (LunarLander, return_range), it is used undiscounted: rewards of
    mixed sign can discount to more than their sum, so no discounted bound follows from it.
    """
    c = config
    if not c.v_min == c.v_max == 0.0:
        return c.v_min, c.v_max
    facts = env_facts.known(c.env_id)
    step = env_facts.STEP_REWARD_RANGE.get(c.env_id)
    if facts is not None and step is not None:
        T = facts.episode_limit
        G = float(T) if c.gamma == 1.0 else (1.0 - c.gamma ** T) / (1.0 - c.gamma)
        low, high = min(step[0], step[0] * G), max(step[1], step[1] * G)
    elif c.return_range:
        low, high = c.return_range
    elif facts is not None:
        low, high = facts.min_return, facts.max_return
    else:
        raise ValueError(f"{c.env_id}: no return range known; set return_range or v_min/v_max")
    scaled = sorted((c.reward_scale * low, c.reward_scale * high))
    return scaled[0], scaled[1]


def support(n_atoms: int, v_min: float, v_max: float, device: torch.device | None = None
            ) -> torch.Tensor:
    """The atoms z (K,): z_i = v_min + i dz, dz = (v_max - v_min) / (K - 1)."""
    return torch.linspace(v_min, v_max, n_atoms, device=device)


def mean(logits: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Q (...,) = sum_i z_i softmax(logits)_i over the last dim of logits (..., K)."""
    return torch.softmax(logits, dim=-1) @ z


def project(probs: torch.Tensor, reward: torch.Tensor, bootstrap: torch.Tensor,
            gamma: float | torch.Tensor, reward_scale: float, z: torch.Tensor) -> torch.Tensor:
    """The target distribution (S, B, K) on the atoms z (K,), from the next state's
    distribution probs (S, B, K) under its chosen action, rewards and bootstrap masks (S, B)
    and gamma (a float, or gamma^m (S, B) for n-step transitions):

        Tz_j = clip(c r + gamma b z_j, v_min, v_max)           b: 1 bootstraps, 0 stops
        m_i  = sum_j p_j max(0, 1 - |Tz_j - z_i| / dz)

    i.e. each atom's mass p_j is split between the two atoms around Tz_j in proportion to
    closeness (all of it to z_i when Tz_j = z_i). At a stop, Tz_j = c r for every j: all mass
    goes to the atoms around the reward.
    """
    K = z.shape[0]
    v_min, v_max = float(z[0]), float(z[-1])
    dz = (v_max - v_min) / (K - 1)
    discount = (gamma * bootstrap)[..., None]  # (S, B, 1)
    tz = (reward_scale * reward[..., None] + discount * z).clamp(v_min, v_max)  # (S, B, K)
    b = ((tz - v_min) / dz).clamp(0, K - 1)  # (S, B, K) position on the grid
    # atom indices (S, B, K): a NaN (a masked seed's garbage batch) indexes atom 0, and its
    # mass stays NaN, so it poisons that seed alone
    low, high = b.nan_to_num(0.0).floor(), b.nan_to_num(0.0).ceil()
    # on the grid (low == high) all the mass goes to low: its share is then 0 + 1
    to_low = probs * (high - b + (low == high).to(b.dtype))
    to_high = probs * (b - low)
    target = torch.zeros_like(probs)
    target.scatter_add_(-1, low.long(), to_low)
    target.scatter_add_(-1, high.long(), to_high)
    return target


def cross_entropy(log_probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-sum_i m_i log p_i (S, B) for log-probabilities and target distributions (S, B, K)."""
    return -(target * log_probs).sum(dim=-1)


def of_action(out: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """The logits (S, B, K) of one action per transition, from logits (S, B, A, K) and
    actions (S, B)."""
    index = action[..., None, None].expand(-1, -1, 1, out.shape[-1])  # (S, B, 1, K)
    return out.gather(-2, index).squeeze(-2)
