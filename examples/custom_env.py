"""Train on an environment of your own, defined right here and registered nowhere: pass its class (any
zero-argument function that returns a new env works too) to an agent.

    python examples/custom_env.py
"""
import os

import gymnasium as gym
import numpy as np

import tfpg

STEPS = int(os.environ.get("TFPG_EXAMPLE_STEPS", 6144))


class Thermostat(gym.Env):
    """Keep a room at 20 degrees: the room drifts towards 10 degrees outside; each step the heater is off (0),
    low (1) or high (2). Reward: minus the distance to 20 degrees. 50 steps an episode."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(3)

    def _obs(self):
        return np.array([(self.temperature - 20.0) / 20.0], dtype=np.float32).clip(-1, 1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.temperature, self.steps = float(self.np_random.uniform(10, 30)), 0
        return self._obs(), {}

    def step(self, action):
        self.temperature += 0.1 * (10.0 - self.temperature) + 1.5 * int(action)
        self.steps += 1
        return self._obs(), -abs(self.temperature - 20.0) / 10.0, False, self.steps >= 50, {}


if __name__ == "__main__":
    agent = tfpg.PPO(Thermostat, seed=0, total_steps=STEPS, num_envs=4, horizon=64, progress=False)
    agent.learn()
    print(f"after {agent.env_steps} env steps: mean return of the last 100 episodes {agent.result.reward_100:.2f}")
    print("heater at 12, 20 and 28 degrees:", agent.predict(np.array([[-0.4], [0.0], [0.4]], np.float32)))
    agent.close()
