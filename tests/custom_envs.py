"""Envs of a user's own, as a test module (not part of tfpg, not gymnasium's).

Importing the module registers them under the namespace `tfpg_tests/`, so `custom_envs:tfpg_tests/Corridor-v0`
works as an id on the command line (with this folder on PYTHONPATH); from Python the classes themselves are
zero-argument factories (`tfpg.PPO(Corridor)`).

Corridor is learnable in a few thousand steps; the others break one rule each, for the checks.
"""
from __future__ import annotations

import os
import threading

import gymnasium as gym
import numpy as np

LENGTH = 6
MAX_STEPS = 30


class Corridor(gym.Env):
    """Walk right along a corridor of `length` cells: -0.05 a step, +1 at the far end (terminal).

    observation: (position / length, 1 if the last move was right else 0) float32; actions: 0 left, 1 right.
    The best return is 1 - 0.05 * (length - 2) (every move right); moving at random rarely gets there in
    the 30-step limit (an episode is truncated there by the env itself, so that it ends also when it is
    passed as a class, without gymnasium's TimeLimit), so a return above 0.5 shows the policy learned to go right."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = LENGTH):
        self.length = int(length)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.position = 0
        self.last = 0

    def _obs(self):
        return np.array([self.position / self.length, self.last], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = int(self.np_random.integers(0, 2))
        self.last = 0
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        self.last = int(action)
        self.position = max(0, self.position + (1 if action == 1 else -1))
        self.steps += 1
        terminated = self.position >= self.length - 1
        reward = 1.0 if terminated else -0.05
        return self._obs(), reward, terminated, self.steps >= MAX_STEPS and not terminated, {}


class WrongShape(Corridor):
    """Observations of shape (3,) from a (2,) space."""

    def _obs(self):
        return np.zeros(3, dtype=np.float32)


class WrongDtype(Corridor):
    """float64 observations from a float32 space."""

    def _obs(self):
        return super()._obs().astype(np.float64)


class NoInfoReset(Corridor):
    """reset() returns the observation alone (the old gym API)."""

    def reset(self, *, seed=None, options=None):
        return super().reset(seed=seed, options=options)[0]


class FourValueStep(Corridor):
    """step() returns (obs, reward, done, info) (the old gym API)."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated or truncated, info


# Steps (of this process) after which FailingCorridor raises or goes non-finite; set through the environment, so
# that a run can be resumed "after the fix" with the same saved configuration.
FAIL_AT = "TFPG_TEST_FAIL_AT"
_steps = {"n": 0}


class FailingCorridor(Corridor):
    """A Corridor that raises RuntimeError once this process has stepped it $TFPG_TEST_FAIL_AT times in all."""

    def step(self, action):
        _steps["n"] += 1
        limit = os.environ.get(FAIL_AT)
        if limit and _steps["n"] > int(limit):
            raise RuntimeError("the corridor collapsed")
        return super().step(action)


class NaNCorridor(Corridor):
    """A Corridor whose observation turns NaN after $TFPG_TEST_FAIL_AT steps of this process."""

    def _obs(self):
        obs = super()._obs()
        limit = os.environ.get(FAIL_AT)
        if limit and _steps["n"] > int(limit):
            obs[0] = np.nan
        return obs

    def step(self, action):
        _steps["n"] += 1
        return super().step(action)


def unpicklable_factory():
    """A zero-argument factory that captures a lock: it cannot be sent to Ray workers."""
    lock = threading.Lock()

    def make():
        with lock:
            return Corridor()

    return make


for _name, _cls in (("Corridor", Corridor), ("WrongShape", WrongShape), ("WrongDtype", WrongDtype),
                    ("NoInfoReset", NoInfoReset), ("FourValueStep", FourValueStep),
                    ("FailingCorridor", FailingCorridor), ("NaNCorridor", NaNCorridor)):
    if f"tfpg_tests/{_name}-v0" not in gym.registry:
        gym.register(f"tfpg_tests/{_name}-v0", entry_point=_cls, max_episode_steps=MAX_STEPS)
