"""Training metrics: TensorBoard scalars, histograms and hparams, the run's config file, a progress bar."""
from __future__ import annotations

import json
import math
import os
import sys
from collections import deque

import numpy as np
import tensorflow as tf


class EpisodeStats:
    """Completed-episode bookkeeping: count, last return, and reward_100 (mean of the last 100)."""

    def __init__(self, window: int = 100):
        self.window = window
        self.recent: deque[float] = deque(maxlen=window)
        self.recent_lengths: deque[int] = deque(maxlen=window)
        self.episodes = 0
        self.last_return = math.nan

    def add(self, returns, lengths=None) -> None:
        if lengths is not None:
            self.recent_lengths.extend(int(n) for n in np.asarray(lengths).ravel())
        for r in np.asarray(returns, dtype=np.float64).ravel():
            self.recent.append(float(r))
            self.episodes += 1
            self.last_return = float(r)

    @property
    def reward_100(self) -> float:
        return float(np.mean(self.recent)) if self.recent else math.nan

    @property
    def length_100(self) -> float:
        return float(np.mean(self.recent_lengths)) if self.recent_lengths else math.nan

    @property
    def full(self) -> bool:
        return len(self.recent) == self.window

    def solved(self, threshold: float | None) -> bool:
        """True once a full window of episodes averages at least `threshold`."""
        return threshold is not None and self.full and self.reward_100 >= threshold


class RunLogger:
    """Writes TensorBoard events and config.json into `run_dir`, and drives a progress bar."""

    def __init__(self, run_dir: str, config: dict, total_steps: int, progress: bool = True, append: bool = False):
        """`append`: continue a resumed run (its config.json and hparams are already there)."""
        self.run_dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        if not append:
            with open(os.path.join(run_dir, "config.json"), "w") as f:
                json.dump(config, f, indent=2, sort_keys=True)
        self.writer = tf.summary.create_file_writer(run_dir)
        if not append:
            self._write_hparams(config)
        self._bar = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, unit="step", unit_scale=True, dynamic_ncols=True,
                             file=sys.stderr, mininterval=0.5)
        self._last_step = 0

    def _write_hparams(self, config: dict) -> None:
        from tensorboard.plugins.hparams import api as hp

        hparams = {k: (v if isinstance(v, (bool, int, float, str)) else json.dumps(v))
                   for k, v in config.items() if v is not None}
        with self.writer.as_default():
            hp.hparams(hparams)

    def scalars(self, step: int, values: dict) -> None:
        with self.writer.as_default(step=step):
            for name, value in values.items():
                value = float(value)
                if not math.isnan(value):
                    tf.summary.scalar(name, value)

    def histograms(self, step: int, values: dict) -> None:
        """TensorBoard histograms (e.g. the actions of a batch, one per action dimension)."""
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.histogram(name, np.asarray(value))

    def progress(self, step: int, reward_100: float, steps_per_s: float) -> None:
        if self._bar is not None:
            self._bar.update(step - self._last_step)
            self._bar.set_postfix_str(f"reward_100={reward_100:.1f} steps/s={steps_per_s:,.0f}", refresh=False)
        self._last_step = step

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self.writer.flush()
        self.writer.close()
