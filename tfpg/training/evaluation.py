"""Greedy evaluation: one function, used during training and by `python -m tfpg.evaluate`.

The seeding scheme: episode k of an evaluation starts from `env.reset(seed=EVAL_SEED + k)`
(EVAL_SEED = 1,000,000, apart from the training envs' seeds), in a sub-env of its own. So a
run's `eval/reward` and `tfpg.evaluate` on its export score exactly the same start states, and
so do two runs with different training seeds. Episodes run in rounds of at most
MAX_EVAL_ENVS sub-envs with one batched `act` call per vector step; each sub-env plays one
episode per round, so the mean is not biased towards short episodes.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from tfpg.envs import make as envs_lib
from tfpg.envs.stepping import VecStepper

EVAL_SEED = 1_000_000
MAX_EVAL_ENVS = 16

Act = Callable[[np.ndarray], np.ndarray]


def make_eval_envs(env_id: str, episodes: int, render_mode: str | None = None,
                   env_kwargs: dict | None = None) -> gym.vector.VectorEnv:
    """Sync sub-envs built by `gym.make(env_id, **env_kwargs)` (a batched env such as CartPole's seeds its sub-envs
    differently from single envs), with real, unclipped rewards."""
    return envs_lib.make_vec_env(env_id, min(episodes, MAX_EVAL_ENVS), seed=EVAL_SEED, vector_mode="sync",
                                 render_mode=render_mode, env_kwargs=env_kwargs)


def play_round(act: Act, stepper: VecStepper, episodes: int) -> list[float]:
    """Undiscounted returns of one episode in each of the first `episodes` sub-envs, from the
    stepper's current (freshly reset) observations."""
    totals = np.zeros(stepper.num_envs)
    running = np.arange(stepper.num_envs) < episodes
    while running.any():
        step = stepper.step(act(stepper.observations))
        totals += np.where(step.live & running, step.rewards, 0.0)
        running &= ~step.ended
    return totals[:episodes].tolist()


def evaluate_returns(act: Act, envs: gym.vector.VectorEnv, episodes: int, seed: int = EVAL_SEED,
                     name: str = "evaluation") -> np.ndarray:
    """Returns of episodes k = 0..episodes-1, episode k started from reset seed `seed + k`; `name`: the envs' in
    errors."""
    stepper = VecStepper(envs, name, seed=seed)   # sub-env i starts from seed + i
    returns: list[float] = []
    while len(returns) < episodes:
        if returns:   # the next round: sub-env i starts from seed + (episodes so far) + i
            stepper.restart(seed + len(returns))
        returns += play_round(act, stepper, min(stepper.num_envs, episodes - len(returns)))
    return np.array(returns)


def greedy_returns(act: Act, env_id: str, episodes: int, seed: int = EVAL_SEED,
                   env_kwargs: dict | None = None) -> np.ndarray:
    """`evaluate_returns` in evaluation envs built for the purpose and closed afterwards."""
    envs = make_eval_envs(env_id, episodes, env_kwargs=env_kwargs)
    try:
        return evaluate_returns(act, envs, episodes, seed, name=f"{env_id} (evaluation)")
    finally:
        envs.close()


@dataclass
class EvaluationState:
    """What a checkpoint keeps of the evaluations (saved and restored field by field)."""

    next_eval: int = 0
    eval_reward: float = math.nan       # mean return of the last evaluation
    eval_env_steps: int = 0             # env steps when it ran
    evaluations: int = 0
    eval_seconds: float = 0.0
    best_reward: float = -math.inf      # with --export-best: the best evaluation so far
    best_env_steps: int = 0


class Evaluator:
    """Runs the greedy evaluations a run's config asks for, and holds the best policy's variables that
    --export-best keeps (`tfpg.training.callbacks.ExportBest`).

    `greedy` maps a batch of observations to actions; `snapshot()` copies the policy's variables."""

    def __init__(self, config, greedy: Act, snapshot: Callable[[], list], log: Callable[[int, dict], None]):
        self.config, self.greedy, self.snapshot, self.log = config, greedy, snapshot, log
        self.state = EvaluationState(next_eval=config.eval_every)
        self.best_variables: list[np.ndarray] | None = snapshot() if config.export_best else None
        self._envs = None

    def due(self, env_steps: int) -> bool:
        return bool(self.config.eval_every) and env_steps >= self.state.next_eval

    def maybe_evaluate(self, env_steps: int) -> np.ndarray | None:
        """The periodic evaluation, when due: its returns (None when not due); the schedule moves on."""
        if not self.due(env_steps):
            return None
        returns = self.evaluate(env_steps)
        while self.state.next_eval <= env_steps:
            self.state.next_eval += self.config.eval_every
        return returns

    def evaluate(self, env_steps: int) -> np.ndarray:
        """config.eval_episodes greedy returns, logged as eval/reward (mean) and eval/reward_std."""
        t0 = time.perf_counter()
        if self._envs is None:
            self._envs = make_eval_envs(self.config.env_id, self.config.eval_episodes,
                                        env_kwargs=self.config.env_kwargs)
        returns = evaluate_returns(self.greedy, self._envs, self.config.eval_episodes,
                                   name=f"{self.config.env_id} (evaluation)")
        s = self.state
        s.eval_reward, s.eval_env_steps, s.evaluations = float(returns.mean()), env_steps, s.evaluations + 1
        s.eval_seconds += time.perf_counter() - t0
        self.log(env_steps, {"eval/reward": s.eval_reward, "eval/reward_std": returns.std()})
        return returns

    def best_is_better(self) -> bool:
        """Whether an earlier evaluation scored higher than the last one (--export-best)."""
        return self.best_variables is not None and self.state.best_reward > self.state.eval_reward

    def close(self) -> None:
        if self._envs is not None:
            self._envs.close()
