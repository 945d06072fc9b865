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
    train_seconds: float
    interrupted_by: int | None = None   # signal number if stopped by SIGINT/SIGTERM

    @property
    def steps_per_s(self) -> float:
        return self.env_steps / self.train_seconds if self.train_seconds > 0 else 0.0


class Run:
    """Bookkeeping shared by all algorithms.

    The algorithm owns its loop: it registers what a checkpoint must hold (`attach`), calls
    `resume` when continuing, `episode_done` from the collector, `update_finite` after each
    gradient step, `log` after each update, `after_update` (which checkpoints when due and
    returns the env re-seed to apply, if any), `should_stop`, and `finish` once.
    """

    def __init__(self, config: RunConfig, run_dir: str, export_path: str | None, resuming: bool = False):
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
            **{f"algo/{k}": v for k, v in self._get_state().items()},
        }

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
                  "episodes": self.stats.episodes, "steps_per_second": steps_per_s,
                  "nonfinite_updates": self.nonfinite_updates, **metrics}
        self.logger.scalars(env_steps, values)
        self.logger.progress(env_steps, self.stats.reward_100, steps_per_s)

    def should_stop(self) -> bool:
        return (self.interrupted_by is not None or self.env_steps >= self.config.total_steps
                or self.stats.solved(self.config.stop_reward))

    def finish(self, policy, observation_space, action_space) -> RunResult:
        seconds = self.train_seconds
        if self.interrupted_by is not None:
            self.save_checkpoint()
        self.logger.close()
        result = RunResult(self.run_dir, self.export_path, self.env_steps, self.stats.episodes,
                           self.stats.reward_100, self.stats.solved(self.config.stop_reward), seconds,
                           self.interrupted_by)
        if self.export_path:
            metadata = {
                "algorithm": self.config.algo, "policy": policy.kind, "env_id": self.config.env_id,
                "observation_space": envs_lib.space_to_dict(observation_space),
                "action_space": envs_lib.space_to_dict(action_space),
                "env_steps": result.env_steps, "episodes": result.episodes,
                "reward_100": None if math.isnan(result.reward_100) else result.reward_100,
                "config": self.config.to_dict(),
            }
            # The path was checked when the run started; replacing this run's own earlier export
            # (written at an interrupt) is what a resumed run must do.
            export_policy(policy, metadata, self.export_path, overwrite=True)
        summary = {**result.__dict__, "steps_per_s": result.steps_per_s, "updates": self.updates,
                   "nonfinite_updates": self.nonfinite_updates}
        tmp = os.path.join(self.run_dir, "summary.json.tmp")
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=2)
        os.replace(tmp, os.path.join(self.run_dir, "summary.json"))
        self._restore_signal_handlers()
        return result
