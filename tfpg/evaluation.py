"""Greedy evaluation during training, shared by all algorithms.

Exploration (epsilon-greedy, sampling) makes the training returns understate what the greedy
policy does, so runs can measure the greedy policy itself: N episodes in a separate vector env,
one batched `act` call per vector step, the same seeded start states every time.
"""
from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from tfpg import envs as envs_lib

# Sub-envs of the evaluation vector env: enough to share each policy call, few enough to stay cheap.
MAX_EVAL_ENVS = 16


def make_eval_env(env_id: str, episodes: int, vector_mode: str = "auto") -> gym.vector.VectorEnv:
    return envs_lib.make_vec_env(env_id, min(episodes, MAX_EVAL_ENVS), seed=0, vector_mode=vector_mode)


def evaluate_returns(act: Callable[[np.ndarray], np.ndarray], envs: gym.vector.VectorEnv, episodes: int,
                     seed: int) -> np.ndarray:
    """Undiscounted returns of `episodes` episodes of `act` (batched observations -> actions).

    Sub-env i runs a fixed quota of episodes (episodes split evenly), so the result is not biased
    towards short episodes the way "the first N episodes to finish" would be. `envs.reset(seed)`
    makes the start states the same at every evaluation.
    """
    n = envs.num_envs
    quota = np.full(n, episodes // n) + (np.arange(n) < episodes % n)
    observations, _ = envs.reset(seed=seed)
    totals = np.zeros(n)
    finished = np.zeros(n, dtype=np.int64)
    resetting = np.zeros(n, dtype=bool)   # NEXT_STEP autoreset: this sub-env's next step is a reset
    returns: list[float] = []
    while (finished < quota).any():
        observations, rewards, terminated, truncated, _ = envs.step(act(observations))
        totals += np.where(resetting, 0.0, rewards)
        ended = (terminated | truncated) & ~resetting
        for i in np.flatnonzero(ended & (finished < quota)):
            returns.append(float(totals[i]))
        finished += ended
        totals[ended] = 0.0
        resetting = ended
    return np.array(returns)


def greedy_returns(act: Callable[[np.ndarray], np.ndarray], env_id: str, episodes: int, seed: int,
                   vector_mode: str = "auto") -> np.ndarray:
    """`evaluate_returns` in a vector env built for the purpose and closed afterwards."""
    envs = make_eval_env(env_id, episodes, vector_mode)
    try:
        return evaluate_returns(act, envs, episodes, seed)
    finally:
        envs.close()
