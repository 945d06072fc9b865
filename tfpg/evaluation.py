"""Deterministic evaluation during training: the greedy policy on fresh, fixed-seed episodes.

One vector env with one sub-env per episode (reset seeds seed, seed+1, ...), stepped together so
a batch of greedy actions costs one policy call per step. Each sub-env's first episode is
scored; with NEXT_STEP autoreset the steps after it are resets and are ignored.
"""
from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np


def evaluate_policy(greedy_actions_fn: Callable[[np.ndarray], np.ndarray], env_id: str, episodes: int,
                    seed: int) -> np.ndarray:
    """Undiscounted returns of `episodes` episodes; greedy_actions_fn maps (N, *obs) to env-ready actions."""
    envs = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP})
    try:
        obs, _ = envs.reset(seed=seed)
        returns = np.zeros(episodes)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            obs, rewards, terminated, truncated, _ = envs.step(greedy_actions_fn(obs))
            returns += np.where(running, rewards, 0.0)
            running &= ~(terminated | truncated)
    finally:
        envs.close()
    return returns
