"""What every training run does around its algorithm: logging, stopping, checkpoints, signals,
non-finite guards, export and the summary."""
from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfpg import envs as envs_lib
from tfpg.checkpoint import TrainingCheckpoint, env_reset_seed
from tfpg import evaluation
from tfpg.config import RunConfig
from tfpg.export import export_policy
from tfpg.logger import EpisodeStats, RunLogger


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. non-finite updates K times in a row); one line for the user."""


@dataclass
class RunResult:
    run_dir: str
    export_path: str | None
    env_steps: int
    episodes: int
    reward_100: float
    solved: bool
    train_seconds: float                # includes the time spent in greedy evaluations
    interrupted_by: int | None = None   # signal number if stopped by SIGINT/SIGTERM
    eval_reward: float = math.nan       # mean return of the last greedy evaluation
    eval_env_steps: int = 0             # env steps when it ran
    eval_seconds: float = 0.0           # time spent in greedy evaluations
    evaluations: int = 0

    @property
    def steps_per_s(self) -> float:
        return self.env_steps / self.train_seconds if self.train_seconds > 0 else 0.0


class Run:
    """Bookkeeping shared by all algorithms.

    The algorithm owns its loop: it registers what a checkpoint must hold (`attach`), calls
    `resume` when continuing, `episode_done` from the collector, `update_finite` after each
    gradient step, `log` after each update, `after_steps` whenever env steps were taken (it runs
    the greedy evaluations that are due), `after_update` (which checkpoints when due and returns
    the env re-seed to apply, if any), `should_stop`, and `finish` once.

    Greedy evaluation (config.eval_every > 0) runs `policy.greedy_numpy`, a batched numpy
    observations -> actions callable, for config.eval_episodes episodes in a separate vector env
    and logs `eval/reward`; with config.stop_on == "eval" its mean is the stop test. With
    config.export_best the policy's variables at the best evaluation (`policy.get_state()`) are
    kept, checkpointed, and exported instead of the final ones if they scored higher.
    """

    def __init__(self, config: RunConfig, run_dir: str, export_path: str | None, policy=None,
                 resuming: bool = False):
        self.config = config
        self.run_dir = run_dir
        self.export_path = export_path
        self.stats = EpisodeStats()
        self.logger = RunLogger(run_dir, config.to_dict(), config.total_steps, progress=config.progress,
                                append=resuming)
        self.env_steps = 0
        self.updates = 0
        self.nonfinite_updates = 0
        self._nonfinite_in_a_row = 0
        self._next_checkpoint = config.checkpoint_every or None
        self._checkpoint: TrainingCheckpoint | None = None
        self._get_state: Callable[[], dict] = dict
        self._set_state: Callable[[dict], None] = lambda state: None
        self._t0: float | None = None
        self._seconds_before = 0.0
        self.interrupted_by: int | None = None
        self._previous_handlers = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous_handlers[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread (e.g. tests driving train() from a thread)
                pass
        self.policy = policy
        if config.eval_every and policy is None:
            raise ValueError(f"--eval-every needs a greedy policy, which {config.algo} did not provide")
        self._eval_envs = None
        self._next_eval = config.eval_every
        self.eval_reward = math.nan
        self.eval_env_steps = 0
        self.eval_seconds = 0.0
        self.evaluations = 0
        # The best evaluation so far: reward, env steps, policy variables (fixed names for checkpoints).
        self._best = (-math.inf, 0, policy.get_state()) if config.export_best else None

    # --- signals -------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        # Finish the current update; the loop sees should_stop() and the run ends cleanly.
        self.interrupted_by = signum

    def _restore_signal_handlers(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)

    # --- checkpoints ---------------------------------------------------------------------
    def attach(self, trackables: dict, get_state: Callable[[], dict], set_state: Callable[[dict], None]) -> None:
        """Register the algorithm's checkpoint content: TF trackables plus named numpy arrays."""
        self._get_state, self._set_state = get_state, set_state
        self._checkpoint = TrainingCheckpoint(self.run_dir, trackables, self._state())

    def _state(self) -> dict:
        return {
            "run/env_steps": np.int64(self.env_steps), "run/updates": np.int64(self.updates),
            "run/episodes": np.int64(self.stats.episodes), "run/last_return": np.float64(self.stats.last_return),
            "run/recent_returns": np.array(self.stats.recent, dtype=np.float64),
            "run/nonfinite_updates": np.int64(self.nonfinite_updates),
            "run/train_seconds": np.float64(self.train_seconds),
            "run/next_eval": np.int64(self._next_eval), "run/eval_reward": np.float64(self.eval_reward),
            "run/eval_env_steps": np.int64(self.eval_env_steps), "run/evaluations": np.int64(self.evaluations),
            "run/eval_seconds": np.float64(self.eval_seconds),
            **self._best_state(),
            **{f"algo/{k}": v for k, v in self._get_state().items()},
        }

    def _best_state(self) -> dict:
        if self._best is None:
            return {}
        reward, steps, variables = self._best
        return {"run/best_reward": np.float64(reward), "run/best_env_steps": np.int64(steps),
                **{f"run/best_variable_{i}": v for i, v in enumerate(variables)}}

    def resume(self) -> int:
        """Load the latest checkpoint; returns the seed to reset the envs with."""
        state = self._checkpoint.restore()
        self.env_steps = int(state["run/env_steps"])
        self.updates = int(state["run/updates"])
        self.stats.episodes = int(state["run/episodes"])
        self.stats.last_return = float(state["run/last_return"])
        self.stats.recent.clear()
        self.stats.recent.extend(state["run/recent_returns"].tolist())
        self.nonfinite_updates = int(state["run/nonfinite_updates"])
        self._seconds_before = float(state["run/train_seconds"])
        self._next_eval = int(state["run/next_eval"])
        self.eval_reward = float(state["run/eval_reward"])
        self.eval_env_steps = int(state["run/eval_env_steps"])
        self.evaluations = int(state["run/evaluations"])
        self.eval_seconds = float(state["run/eval_seconds"])
        if self._best is not None:
            self._best = (float(state["run/best_reward"]), int(state["run/best_env_steps"]),
                          [state[f"run/best_variable_{i}"] for i in range(len(self._best[2]))])
        self._set_state({k[len("algo/"):]: v for k, v in state.items() if k.startswith("algo/")})
        if self.config.checkpoint_every:
            every = self.config.checkpoint_every
            self._next_checkpoint = (self.env_steps // every + 1) * every
        return env_reset_seed(self.config.seed, self.env_steps)

    def save_checkpoint(self) -> str | None:
        if self._checkpoint is None:
            return None
        return self._checkpoint.save(self.env_steps, self._state())

    def after_update(self) -> int | None:
        """Checkpoint when due. Returns a seed to reset the envs with, or None.

        Env internals cannot be saved generically, so a checkpoint ends the running episodes
        and re-seeds the envs deterministically; a resumed run does the same at the same point
        and continues exactly as the uninterrupted one.
        """
        self.updates += 1
        return self.checkpoint_if_due()

    def checkpoint_if_due(self) -> int | None:
        """Save a checkpoint if `checkpoint_every` env steps have passed; returns the env re-seed or None."""
        if self._next_checkpoint is None or self.env_steps < self._next_checkpoint:
            return None
        self.save_checkpoint()
        every = self.config.checkpoint_every
        self._next_checkpoint = (self.env_steps // every + 1) * every
        return env_reset_seed(self.config.seed, self.env_steps)

    # --- non-finite guard ----------------------------------------------------------------
    def update_finite(self, finite: bool) -> None:
        """Count a skipped (non-finite) update; give up after `max_nonfinite` in a row."""
        if finite:
            self._nonfinite_in_a_row = 0
            return
        self.nonfinite_updates += 1
        self._nonfinite_in_a_row += 1
        if self._nonfinite_in_a_row >= self.config.max_nonfinite:
            self.logger.close()
            self._restore_signal_handlers()
            last = self._checkpoint and self._checkpoint.latest()
            where = f"; the last good checkpoint is {last}" if last else ""
            raise TrainingError(f"{self._nonfinite_in_a_row} updates in a row had a non-finite loss or gradient "
                                f"at env step {self.env_steps}{where}; lower --lr or set --grad-clip")

    # --- time, logging, stopping ---------------------------------------------------------
    def start_clock(self) -> None:
        """Call just before the first env step: training time excludes start-up."""
        self._t0 = time.perf_counter()

    @property
    def train_seconds(self) -> float:
        return self._seconds_before + (0.0 if self._t0 is None else time.perf_counter() - self._t0)

    def episode_done(self, returns, lengths) -> None:
        self.stats.add(returns, lengths)

    def log(self, env_steps: int, metrics: dict) -> None:
        self.env_steps = env_steps
        seconds = self.train_seconds
        steps_per_s = env_steps / seconds if seconds > 0 else 0.0
        values = {"reward": self.stats.last_return, "reward_100": self.stats.reward_100,
                  "episodes": self.stats.episodes, "length_100": self.stats.length_100, "steps_per_second": steps_per_s,
                  "nonfinite_updates": self.nonfinite_updates, **metrics}
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
        returns = evaluation.evaluate_returns(self.policy.greedy_numpy, self._eval_envs, self.config.eval_episodes,
                                              seed=self.config.seed + 1_000_000)
        self.eval_reward = float(returns.mean())
        if self._best is not None and self.eval_reward > self._best[0]:
            self._best = (self.eval_reward, self.env_steps, self.policy.get_state())
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
        return self.interrupted_by is not None or self.env_steps >= self.config.total_steps or self.solved()

    def finish(self, policy, observation_space, action_space) -> RunResult:
        """With evaluation on, a last one scores the final policy (eval_reward in summary.json;
        not counted in train_seconds)."""
        seconds = self.train_seconds
        if self.interrupted_by is not None:
            self.save_checkpoint()
        elif self.config.eval_every and self.eval_env_steps != self.env_steps:
            # A final greedy evaluation of the policy being exported, unless the last one saw it.
            self.evaluate()
        exported_from = {"env_steps": self.env_steps, "eval_reward": self.eval_reward if self.evaluations else None}
        if self._best is not None and self._best[0] > self.eval_reward:
            # The exported policy is the best evaluated one; the checkpoint keeps the final one.
            final_state = policy.get_state()
            policy.set_state(self._best[2])
            exported_from = {"env_steps": self._best[1], "eval_reward": self._best[0]}
        if self._eval_envs is not None:
            self._eval_envs.close()
        self.logger.close()
        result = RunResult(self.run_dir, self.export_path, self.env_steps, self.stats.episodes,
                           self.stats.reward_100, self.solved(), seconds, self.interrupted_by, self.eval_reward,
                           self.eval_env_steps, self.eval_seconds, self.evaluations)
        if self.export_path:
            metadata = {
                "algorithm": self.config.algo, "policy": policy.kind, "env_id": self.config.env_id,
                "observation_space": envs_lib.space_to_dict(observation_space),
                "action_space": envs_lib.space_to_dict(action_space),
                "env_steps": result.env_steps, "episodes": result.episodes,
                "reward_100": None if math.isnan(result.reward_100) else result.reward_100,
                "config": self.config.to_dict(),
            }
            if result.evaluations:
                metadata["eval_reward"] = result.eval_reward
                metadata["exported_from"] = exported_from
            # The path was checked when the run started; replacing this run's own earlier export
            # (written at an interrupt) is what a resumed run must do.
            export_policy(policy, metadata, self.export_path, overwrite=True)
        if self._best is not None and self._best[0] > self.eval_reward:
            policy.set_state(final_state)
        summary = {**result.__dict__, "steps_per_s": result.steps_per_s, "updates": self.updates,
                   "nonfinite_updates": self.nonfinite_updates}
        tmp = os.path.join(self.run_dir, "summary.json.tmp")
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=2)
        os.replace(tmp, os.path.join(self.run_dir, "summary.json"))
        self._restore_signal_handlers()
        return result
