"""A corridor to walk along: -0.05 a step, +1 at the far end."""
import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Start near cell 0 of `length` cells; action 1 moves right, 0 left; the episode ends at the last cell.

    Observation: (position / length, whether the last move was right), float32 in [0, 1]."""

    def __init__(self, length: int = 6, render_mode=None):
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.position, self.last = 0, 0

    def _obs(self):
        return np.array([self.position / self.length, self.last], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position, self.last = int(self.np_random.integers(0, 2)), 0
        return self._obs(), {}

    def step(self, action):
        self.last = int(action)
        self.position = max(0, self.position + (1 if action == 1 else -1))
        arrived = self.position >= self.length - 1
        return self._obs(), 1.0 if arrived else -0.05, arrived, False, {}
