"""What every training run does around its algorithm: folders, logging, stopping, export, summary."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass

from tfpg import envs as envs_lib
from tfpg.config import RunConfig
from tfpg.export import export_policy
from tfpg.logger import EpisodeStats, RunLogger

# Evaluation episodes use their own seeds, far from the training envs' (seed, seed+1, ...).
EVAL_SEED = 10_000


@dataclass
class RunResult:
    run_dir: str
    export_path: str | None
    env_steps: int
    episodes: int
    reward_100: float
    solved: bool
    train_seconds: float

    @property
    def steps_per_s(self) -> float:
        return self.env_steps / self.train_seconds if self.train_seconds > 0 else 0.0


class Run:
    """Bookkeeping shared by all algorithms.

    The algorithm owns its loop; it calls `episode_done` from the collector, `log` after each
    update, `should_stop` to test the budget and the stop reward, and `finish` once.
    """

    def __init__(self, config: RunConfig, run_dir: str, export_path: str | None):
        self.config = config
        self.run_dir = run_dir
        self.export_path = export_path
        self.stats = EpisodeStats()
        self.logger = RunLogger(run_dir, config.to_dict(), config.total_steps, progress=config.progress)
        self.env_steps = 0
        self.eval_reward = math.nan      # the latest deterministic evaluation
        self._evaluations = 0
        self._best: tuple | None = None  # (eval reward, env steps, policy state)
        self._t0: float | None = None

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
                  "episodes": self.stats.episodes, "length_100": self.stats.length_100,
                  "steps_per_second": steps_per_s, **metrics}
        self.logger.scalars(env_steps, values)
        self.logger.progress(env_steps, self.stats.reward_100, steps_per_s)

    def maybe_evaluate(self, env_steps: int, policy) -> None:
        """Every `eval_every` env steps: mean greedy return over `eval_episodes` fixed-seed
        episodes, logged as eval/reward (its time counts as training time). With `export_best`,
        the policy's variables at the best evaluation so far are kept for the export."""
        every = self.config.eval_every
        if every and env_steps // every > self._evaluations:
            self._evaluations = env_steps // every
            reward = self.evaluate(env_steps, policy.greedy_numpy)
            if self.config.export_best and (self._best is None or reward > self._best[0]):
                self._best = (reward, env_steps, policy.get_state())

    def evaluate(self, env_steps: int, greedy_actions_fn) -> float:
        from tfpg.evaluation import evaluate_policy

        returns = evaluate_policy(greedy_actions_fn, self.config.env_id, self.config.eval_episodes, EVAL_SEED)
        self.eval_reward = float(returns.mean())
        self.logger.scalars(env_steps, {"eval/reward": self.eval_reward, "eval/reward_std": float(returns.std())})
        return self.eval_reward

    def should_stop(self) -> bool:
        return self.env_steps >= self.config.total_steps or self.stats.solved(self.config.stop_reward)

    def finish(self, policy, observation_space, action_space) -> RunResult:
        """With evaluation on, a last one scores the final policy (eval_reward in summary.json;
        not counted in train_seconds)."""
        seconds = self.train_seconds
        exported_from = {"env_steps": self.env_steps}
        if self.config.eval_every:
            exported_from["eval_reward"] = self.evaluate(self.env_steps, policy.greedy_numpy)
            if self._best is not None and self._best[0] > self.eval_reward:
                policy.set_state(self._best[2])
                exported_from = {"env_steps": self._best[1], "eval_reward": self._best[0]}
        self.logger.close()
        result = RunResult(self.run_dir, self.export_path, self.env_steps, self.stats.episodes,
                           self.stats.reward_100, self.stats.solved(self.config.stop_reward), seconds)
        if self.export_path:
            metadata = {
                "algorithm": self.config.algo, "policy": policy.kind, "env_id": self.config.env_id,
                "observation_space": envs_lib.space_to_dict(observation_space),
                "action_space": envs_lib.space_to_dict(action_space),
                "env_steps": result.env_steps, "episodes": result.episodes,
                "reward_100": result.reward_100, "config": self.config.to_dict(),
                "exported_from": exported_from,
            }
            export_policy(policy, metadata, self.export_path, overwrite=self.config.overwrite)
        summary = {**result.__dict__, "steps_per_s": result.steps_per_s, "eval_reward": self.eval_reward}
        with open(os.path.join(self.run_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        return result
