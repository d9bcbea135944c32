"""A toy environment a user could write, for the tests that run studies on an environment the
project does not know: importing this module registers it as "Toy-v0" (so the env id
"toy_env:Toy-v0" works in any process), and "toy_env:Toy" is its class as an entry point.

Each step shows a number x in [-1, 1]; action 1 pays 1 when x > 0, action 0 pays 1 when x <= 0,
the other pays nothing. Episodes last 10 steps (returns 0 to 10), so a learner reaches 10 and
a random policy about 5.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

LENGTH = 10


class Toy(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        self.x = self.np_random.uniform(-1.0, 1.0)
        return self._obs(), {}

    def step(self, action):
        reward = float((action == 1) == (self.x > 0))
        self.t += 1
        self.x = self.np_random.uniform(-1.0, 1.0)
        return self._obs(), reward, self.t >= LENGTH, False, {}

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.t / LENGTH], dtype=np.float32)


if "Toy-v0" not in gym.registry:
    gym.register("Toy-v0", entry_point="toy_env:Toy", reward_threshold=9.0)
