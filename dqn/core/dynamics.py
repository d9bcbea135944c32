"""Classic-control dynamics, batched: gymnasium 1.x's arithmetic for CartPole, Acrobot ("book"
dynamics) and MountainCar, written once against an array module `xp` (numpy or torch), term for
term in gymnasium's order so that numpy gives gymnasium's bits (dqn.core.classic runs them).

Each `*_step(xp, state, action)` takes the float64 state (state_dim, n) and integer actions (n,)
and returns (next state, terminated (n,)); each `*_obs(xp, state)` the float32 observations.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import torch

WRAPS = 4
"""Passes of Acrobot's angle wrap (gymnasium's `while x > M: x -= 2 pi` loop), a fixed count so
no step asks the device. Measured 2026-12-07 over 10^6 sub-env steps (half random actions, half
energy pumping): the largest angle before wrapping was 6.74, so 1 pass sufficed; the test fails
if a state is ever left outside [-pi, pi]."""


def f32(xp: ModuleType, x: Any) -> Any:
    """x as float32 in either array module."""
    return x.astype(np.float32) if xp is np else x.to(torch.float32)


def power2(xp: ModuleType, x: Any) -> Any:
    """x**2 as gymnasium's scalar `x**2` computes it: the C library's pow(x, 2.0), which is not
    always x * x rounded (about 1 argument in 1,000 differs in the last bit). numpy's
    float_power calls it element by element; torch's pow(x, 2) is x * x."""
    return np.float_power(x, 2.0) if xp is np else x**2


def f64(xp: ModuleType, x: Any) -> Any:
    """x as float64 in either array module."""
    return x.astype(np.float64) if xp is np else x.to(torch.float64)


# ---- CartPole (gymnasium.envs.classic_control.cartpole.CartPoleVectorEnv) ---------------------
GRAVITY, MASSCART, MASSPOLE = 9.8, 1.0, 0.1
TOTAL_MASS = MASSPOLE + MASSCART
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG, TAU = 10.0, 0.02
THETA_THRESHOLD = 12 * 2 * np.pi / 360
X_THRESHOLD = 2.4
CARTPOLE_LOW, CARTPOLE_HIGH = -0.05, 0.05


def cartpole_step(xp: ModuleType, state: Any, action: Any) -> tuple[Any, Any]:
    """One Euler step of every sub-env: (next state (4, n) float64, terminated (n,))."""
    x, x_dot, theta, theta_dot = state
    force = xp.sign(f64(xp, action) - 0.5) * FORCE_MAG
    costheta = xp.cos(theta)
    sintheta = xp.sin(theta)
    temp = (force + POLEMASS_LENGTH * xp.square(theta_dot) * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * xp.square(costheta) / TOTAL_MASS))
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    x = x + TAU * x_dot
    x_dot = x_dot + TAU * xacc
    theta = theta + TAU * theta_dot
    theta_dot = theta_dot + TAU * thetaacc
    terminated = ((x < -X_THRESHOLD) | (x > X_THRESHOLD) | (theta < -THETA_THRESHOLD)
                  | (theta > THETA_THRESHOLD))
    return xp.stack((x, x_dot, theta, theta_dot)), terminated


def cartpole_obs(xp: ModuleType, state: Any) -> Any:
    return f32(xp, state.T)


# ---- Acrobot (gymnasium.envs.classic_control.acrobot.AcrobotEnv, "book" dynamics) --------------
LINK_LENGTH_1, LINK_MASS_1, LINK_MASS_2 = 1.0, 1.0, 1.0
LINK_COM_POS_1, LINK_COM_POS_2, LINK_MOI = 0.5, 0.5, 1.0
MAX_VEL_1, MAX_VEL_2 = 4 * np.pi, 9 * np.pi
ACROBOT_DT = 0.2


def acrobot_dsdt(xp: ModuleType, s: tuple[Any, Any, Any, Any], a: Any) -> tuple[Any, ...]:
    """AcrobotEnv._dsdt: (dtheta1, dtheta2, ddtheta1, ddtheta2) of every sub-env."""
    m1, m2, l1 = LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1
    lc1, lc2, I1, I2 = LINK_COM_POS_1, LINK_COM_POS_2, LINK_MOI, LINK_MOI
    g, pi, cos, sin = 9.8, np.pi, xp.cos, xp.sin
    theta1, theta2, dtheta1, dtheta2 = s
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos(theta2)) + I1 + I2
    d2 = m2 * (lc2**2 + l1 * lc2 * cos(theta2)) + I2
    phi2 = m2 * lc2 * g * cos(theta1 + theta2 - pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * power2(xp, dtheta2) * sin(theta2)
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin(theta2)
        + (m1 * lc1 + m2 * l1) * g * cos(theta1 - pi / 2)
        + phi2
    )
    ddtheta2 = (
        a + d2 / d1 * phi1 - m2 * l1 * lc2 * power2(xp, dtheta1) * sin(theta2) - phi2
    ) / (m2 * lc2**2 + I2 - power2(xp, d2) / d1)
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return dtheta1, dtheta2, ddtheta1, ddtheta2


def acrobot_step(xp: ModuleType, state: Any, action: Any) -> tuple[Any, Any]:
    """One RK4 step (gymnasium's rk4 over [0, dt]), wrapped angles and bounded velocities:
    (next state (4, n) float64, terminated (n,))."""
    a = f64(xp, action) - 1.0  # AVAIL_TORQUE[a] = [-1.0, 0.0, +1][a]
    y0 = tuple(state)
    dt = ACROBOT_DT - 0
    dt2 = dt / 2.0
    k1 = acrobot_dsdt(xp, y0, a)
    k2 = acrobot_dsdt(xp, tuple(y + dt2 * k for y, k in zip(y0, k1, strict=True)), a)
    k3 = acrobot_dsdt(xp, tuple(y + dt2 * k for y, k in zip(y0, k2, strict=True)), a)
    k4 = acrobot_dsdt(xp, tuple(y + dt * k for y, k in zip(y0, k3, strict=True)), a)
    ns = [y + dt / 6.0 * (p + 2 * q + 2 * r + s)
          for y, p, q, r, s in zip(y0, k1, k2, k3, k4, strict=True)]
    for i in (0, 1):  # wrap(x, -pi, pi)
        diff = np.pi - -np.pi
        for _ in range(WRAPS):
            ns[i] = xp.where(ns[i] > np.pi, ns[i] - diff, ns[i])
        for _ in range(WRAPS):
            ns[i] = xp.where(ns[i] < -np.pi, ns[i] + diff, ns[i])
    ns[2] = xp.clip(ns[2], -MAX_VEL_1, MAX_VEL_1)
    ns[3] = xp.clip(ns[3], -MAX_VEL_2, MAX_VEL_2)
    terminated = -xp.cos(ns[0]) - xp.cos(ns[1] + ns[0]) > 1.0
    return xp.stack(ns), terminated


def acrobot_obs(xp: ModuleType, state: Any) -> Any:
    s = state
    return f32(xp, xp.stack((xp.cos(s[0]), xp.sin(s[0]), xp.cos(s[1]), xp.sin(s[1]),
                             s[2], s[3])).T)


# ---- MountainCar (gymnasium.envs.classic_control.mountain_car.MountainCarEnv) -----------------
MIN_POSITION, MAX_POSITION, MAX_SPEED = -1.2, 0.6, 0.07
GOAL_POSITION, GOAL_VELOCITY = 0.5, 0
FORCE, MC_GRAVITY = 0.001, 0.0025


def mountaincar_step(xp: ModuleType, state: Any, action: Any) -> tuple[Any, Any]:
    """One step: (next state (2, n) float64, terminated (n,))."""
    position, velocity = state
    velocity = velocity + ((f64(xp, action) - 1) * FORCE + xp.cos(3 * position) * (-MC_GRAVITY))
    velocity = xp.clip(velocity, -MAX_SPEED, MAX_SPEED)
    position = position + velocity
    position = xp.clip(position, MIN_POSITION, MAX_POSITION)
    velocity = xp.where((position == MIN_POSITION) & (velocity < 0), 0.0, velocity)
    terminated = (position >= GOAL_POSITION) & (velocity >= GOAL_VELOCITY)
    return xp.stack((position, velocity)), terminated


def mountaincar_obs(xp: ModuleType, state: Any) -> Any:
    return f32(xp, state.T)
