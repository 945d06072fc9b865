"""Training metrics: TensorBoard scalars, histograms and hparams, the run's config file, a progress bar."""
from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf


@dataclass
class EpisodeStats:
    """Completed-episode bookkeeping: count, last return, and reward_100 (mean of the last 100).

    Its fields are what a checkpoint keeps (`tfpg.core.checkpoint.dataclass_arrays`)."""

    episodes: int = 0
    last_return: float = math.nan
    recent: list[float] = field(default_factory=list)          # the last WINDOW returns
    recent_lengths: list[int] = field(default_factory=list)    # and lengths

    WINDOW = 100

    def add(self, returns, lengths=None) -> None:
        returns = np.asarray(returns, dtype=np.float64).ravel()
        if lengths is not None:
            self.recent_lengths = (self.recent_lengths + [int(n) for n in np.asarray(lengths).ravel()])[-self.WINDOW:]
        if len(returns):
            self.recent = (self.recent + returns.tolist())[-self.WINDOW:]
            self.episodes += len(returns)
            self.last_return = float(returns[-1])

    @property
    def reward_100(self) -> float:
        return float(np.mean(self.recent)) if self.recent else math.nan

    @property
    def length_100(self) -> float:
        return float(np.mean(self.recent_lengths)) if self.recent_lengths else math.nan

    @property
    def full(self) -> bool:
        return len(self.recent) == self.WINDOW

    def solved(self, threshold: float | None) -> bool:
        """True once a full window of episodes averages at least `threshold`."""
        return threshold is not None and self.full and self.reward_100 >= threshold


MAX_COMPILED_WRITERS = 32   # sets of metric names with a compiled writer of their own (~50 ms to trace each)


class RunLogger:
    """Writes TensorBoard events and config.json into `run_dir`, and drives a progress bar."""

    def __init__(self, run_dir: str, config: dict, total_steps: int, progress: bool = True, append: bool = False,
                 hparams: dict | None = None, metrics: tuple[str, ...] = ()):
        """`append`: continue a resumed run (its config.json and hparams are already there).
        `hparams` go to TensorBoard's HPARAMS tab with `metrics` as the outcomes to compare runs by."""
        self.run_dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        if not append:
            write_json_atomically(os.path.join(run_dir, "config.json"), config)
        self.writer = tf.summary.create_file_writer(run_dir)
        self._scalar_writers: dict = {}
        if not append:
            self._write_hparams(hparams if hparams is not None else config, metrics)
        self._bar = None
        self._show_progress = progress
        self._last_step = 0

    def open_progress(self, until: int) -> None:
        """A progress bar from the current step to `until` (each learn() call has its own)."""
        if self._show_progress:
            from tqdm import tqdm

            self._bar = tqdm(total=until, initial=self._last_step, unit="step", unit_scale=True, dynamic_ncols=True,
                             file=sys.stderr, mininterval=0.5)

    def _write_hparams(self, hparams: dict, metrics: tuple[str, ...]) -> None:
        from tensorboard.plugins.hparams import api as hp

        values = {k: (v if isinstance(v, (bool, int, float, str)) else json.dumps(v))
                  for k, v in hparams.items() if v is not None}
        with self.writer.as_default():
            hp.hparams_config(hparams=[hp.HParam(k) for k in values], metrics=[hp.Metric(m) for m in metrics])
            hp.hparams(values)

    def scalars(self, step: int, values: dict) -> None:
        """Every non-NaN value as a TensorBoard scalar at `step`, in one compiled call: eager tf.summary.scalar
        costs ~0.5 ms a value, ~20 ms per update for the actor-critics' ~25 metrics, a fifth of a PPO CartPole
        iteration. One graph is traced per set of names (a few per run: NaN values and evaluations vary it)."""
        written = {name: float(value) for name, value in values.items() if not math.isnan(float(value))}
        if not written:
            return
        names = tuple(written)
        if names not in self._scalar_writers and len(self._scalar_writers) >= MAX_COMPILED_WRITERS:
            with self.writer.as_default(step=step):   # an algorithm whose metric names keep changing: eager
                for name, value in written.items():
                    tf.summary.scalar(name, value)
            return
        if names not in self._scalar_writers:
            self._scalar_writers[names] = self._compile_scalars(names)
        self._scalar_writers[names](tf.constant(step, tf.int64), tf.constant([written[n] for n in names], tf.float32))

    def _compile_scalars(self, names: tuple[str, ...]):
        writer = self.writer

        @tf.function(input_signature=[tf.TensorSpec([], tf.int64), tf.TensorSpec([len(names)], tf.float32)],
                     autograph=False)
        def write(step, values):
            with writer.as_default(step=step):
                for i, name in enumerate(names):
                    tf.summary.scalar(name, values[i])

        return write.get_concrete_function()

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

    def flush(self) -> None:
        """Close the progress bar; write the events so far to disk."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.writer.flush()

    def close(self) -> None:
        self.flush()
        self.writer.close()


def write_json_atomically(path: str, value) -> None:
    """Write JSON to `path` via a temporary file and a rename: readers never see half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
