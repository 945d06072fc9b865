"""What every training run does around its algorithm: folders, logging, stopping, export, summary."""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfpg import envs as envs_lib
from tfpg import evaluation
from tfpg.config import RunConfig
from tfpg.export import export_policy
from tfpg.logger import EpisodeStats, RunLogger


@dataclass
class RunResult:
    run_dir: str
    export_path: str | None
    env_steps: int
    episodes: int
    reward_100: float
    solved: bool
    train_seconds: float                # includes the time spent in greedy evaluations
    eval_reward: float = math.nan       # mean return of the last greedy evaluation
    eval_env_steps: int = 0             # env steps when it ran
    eval_seconds: float = 0.0           # time spent in greedy evaluations
    evaluations: int = 0

    @property
    def steps_per_s(self) -> float:
        return self.env_steps / self.train_seconds if self.train_seconds > 0 else 0.0


class Run:
    """Bookkeeping shared by all algorithms.

    The algorithm owns its loop; it calls `episode_done` from the collector, `log` after each
    update, `after_steps` whenever env steps were taken (it runs the greedy evaluations that are
    due), `should_stop` to test the budget and the stop criterion, and `finish` once.

    Greedy evaluation (config.eval_every > 0) runs `greedy_act`, a batched numpy
    observations -> actions callable, for config.eval_episodes episodes in a separate vector env
    and logs `eval/reward`; with config.stop_on == "eval" its mean is the stop test.
    """

    def __init__(self, config: RunConfig, run_dir: str, export_path: str | None,
                 greedy_act: Callable[[np.ndarray], np.ndarray] | None = None):
        self.config = config
        self.run_dir = run_dir
        self.export_path = export_path
        self.stats = EpisodeStats()
        self.logger = RunLogger(run_dir, config.to_dict(), config.total_steps, progress=config.progress)
        self.env_steps = 0
        self._t0: float | None = None
        self.greedy_act = greedy_act
        if config.eval_every and greedy_act is None:
            raise ValueError(f"--eval-every needs a greedy policy, which {config.algo} did not provide")
        self._eval_envs = None
        self._next_eval = config.eval_every
        self.eval_reward = math.nan
        self.eval_env_steps = 0
        self.eval_seconds = 0.0
        self.evaluations = 0

    def start_clock(self) -> None:
        """Call just before the first env step: training time excludes start-up."""
        self._t0 = time.perf_counter()

    @property
    def train_seconds(self) -> float:
        return 0.0 if self._t0 is None else time.perf_counter() - self._t0

    def episode_done(self, returns, lengths) -> None:
        self.stats.add(returns, lengths)

    def log(self, env_steps: int, metrics: dict) -> None:
        self.env_steps = env_steps
        seconds = self.train_seconds
        steps_per_s = env_steps / seconds if seconds > 0 else 0.0
        values = {"reward": self.stats.last_return, "reward_100": self.stats.reward_100,
                  "episodes": self.stats.episodes, "steps_per_second": steps_per_s, **metrics}
        self.logger.scalars(env_steps, values)
        self.logger.progress(env_steps, self.stats.reward_100, steps_per_s)

    def after_steps(self, env_steps: int) -> None:
        """Record progress; run a greedy evaluation if one is due."""
        self.env_steps = env_steps
        if self.config.eval_every and env_steps >= self._next_eval:
            self.evaluate()
            while self._next_eval <= env_steps:
                self._next_eval += self.config.eval_every

    def evaluate(self) -> np.ndarray:
        """Greedy returns of config.eval_episodes episodes, logged as eval/reward (mean) and eval/reward_std."""
        t0 = time.perf_counter()
        if self._eval_envs is None:
            self._eval_envs = evaluation.make_eval_env(self.config.env_id, self.config.eval_episodes,
                                                       self.config.vector_mode)
        # Seeds apart from the training envs' (seed, seed+1, ...), the same at every evaluation.
        returns = evaluation.evaluate_returns(self.greedy_act, self._eval_envs, self.config.eval_episodes,
                                              seed=self.config.seed + 1_000_000)
        self.eval_reward = float(returns.mean())
        self.eval_env_steps = self.env_steps
        self.evaluations += 1
        self.eval_seconds += time.perf_counter() - t0
        self.logger.scalars(self.env_steps, {"eval/reward": self.eval_reward, "eval/reward_std": returns.std()})
        return returns

    def solved(self) -> bool:
        threshold = self.config.stop_reward
        if self.config.stop_on == "eval":
            return threshold is not None and self.eval_reward >= threshold
        return self.stats.solved(threshold)

    def should_stop(self) -> bool:
        return self.env_steps >= self.config.total_steps or self.solved()

    def finish(self, policy, observation_space, action_space) -> RunResult:
        seconds = self.train_seconds
        # A final greedy evaluation of the policy being exported, unless the last one saw it.
        if self.config.eval_every and self.eval_env_steps != self.env_steps:
            self.evaluate()
        if self._eval_envs is not None:
            self._eval_envs.close()
        self.logger.close()
        result = RunResult(self.run_dir, self.export_path, self.env_steps, self.stats.episodes,
                           self.stats.reward_100, self.solved(), seconds, self.eval_reward,
                           self.eval_env_steps, self.eval_seconds, self.evaluations)
        if self.export_path:
            metadata = {
                "algorithm": self.config.algo, "policy": policy.kind, "env_id": self.config.env_id,
                "observation_space": envs_lib.space_to_dict(observation_space),
                "action_space": envs_lib.space_to_dict(action_space),
                "env_steps": result.env_steps, "episodes": result.episodes,
                "reward_100": result.reward_100, "config": self.config.to_dict(),
            }
            if result.evaluations:
                metadata["eval_reward"] = result.eval_reward
            export_policy(policy, metadata, self.export_path, overwrite=self.config.overwrite)
        summary = {**result.__dict__, "steps_per_s": result.steps_per_s}
        with open(os.path.join(self.run_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        return result
