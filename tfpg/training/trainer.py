"""The trainer: everything around an algorithm's maths, written once for every algorithm.

    seed -> envs + stepping core (or Ray rollout workers) -> algorithm -> evaluator, checkpoint (-> resume,
    checked before) -> logger
    loop:  iteration = algorithm.iteration()          collect -> learn -> metrics
           non-finite guard · evaluation when due · log · checkpoint when due (envs re-seeded)
           stop on the budget, the stop test, or SIGINT/SIGTERM
    end:   checkpoint if interrupted · last evaluation · export · summary.json

Checkpoint content is declared once: the trainer's `Progress`, the `EpisodeStats` and the
`EvaluationState` are dataclasses saved field by field, the algorithm adds its `trackables()`
and `state()`. Env internals cannot be saved generically, so a checkpoint ends the running
episodes and re-seeds the envs with `env_reset_seed(seed, env_steps)`; a resumed run does the
same at the same point and continues exactly as the uninterrupted one.

With --workers the envs live on Ray actors (`tfpg.backends.ray.workers`): the stepper here only counts what
they hand back and passes re-seeding on to them, and the algorithm's collector is replaced by a
stand-in that collects on the workers; the loop above does not change.
"""
from __future__ import annotations

import math
import os
import sys
import time
import warnings
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfpg.envs import make as envs_lib
from tfpg.algos.base import Algorithm, Iteration
from tfpg.core.checkpoint import (
    RestoreResult,
    TrainingCheckpoint,
    dataclass_arrays,
    env_reset_seed,
    last_good_checkpoint,
    load_dataclass_arrays,
)
from tfpg.config.run import RunConfig
from tfpg.training.evaluation import Evaluator
from tfpg.core.errors import SaveError
from tfpg.export.saved_model import export_policy, policy_metadata
from tfpg.training.logger import EpisodeStats, RunLogger, write_json_atomically
from tfpg.models.policies import restore_variables, snapshot_variables
from tfpg.training.signals import StopSignals
from tfpg.envs.stepping import VecStepper


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


@dataclass
class Progress:
    """The trainer's own counters (checkpointed field by field)."""

    updates: int = 0
    nonfinite_updates: int = 0
    nonfinite_in_a_row: int = 0
    next_checkpoint: int = 0


class Trainer:
    """Trains one algorithm with one config; `run()` returns the RunResult."""

    def __init__(self, algorithm: type[Algorithm], config: RunConfig, run_dir: str, export_path: str | None,
                 resume: bool = False, validated: RestoreResult | None = None):
        """`validated`: with `resume`, the checkpoint `find_intact_checkpoint` chose (it is not read twice)."""
        keras.utils.set_random_seed(config.seed)
        self.config, self.run_dir, self.export_path = config, run_dir, export_path
        self._t0: float | None = None       # the clock starts at the first env step of this process
        self._seconds_before = 0.0          # training time of the processes before a resume
        self.spaces = envs_lib.env_spaces(config.env_id)
        self.stats = EpisodeStats()
        self.envs = self.workers = None
        try:
            self._build_experience(algorithm)
        except BaseException:
            self._close_experience()
            raise
        self.progress = Progress(next_checkpoint=config.checkpoint_every)
        self.evaluator = Evaluator(config, self.algo.policy.greedy_numpy, lambda: snapshot_variables(self.algo.policy),
                                   lambda steps, values: self.logger.scalars(steps, values))
        self.checkpoint = TrainingCheckpoint(run_dir, self.algo.trackables(), self._arrays())
        self.signals = StopSignals()
        if resume:   # before the logger: a checkpoint that does not fit leaves the run folder as it was
            self._resume(validated)
        self.logger = RunLogger(run_dir, config.to_dict(), config.total_steps, progress=config.progress,
                                append=resume, hparams=config.hparams(),
                                metrics=("reward_100", "eval/reward", algorithm.loss_metric))

    def _build_experience(self, algorithm: type[Algorithm]) -> None:
        """Envs + stepping core in this process, or Ray rollout workers (`tfpg.backends.ray.workers`) with --workers."""
        config = self.config
        if config.workers:
            from tfpg.backends.ray.workers import WorkerPool

            self.workers = WorkerPool(config, self.spaces, self.stats.add)
            self.stepper = self.workers.stepper
        else:
            self.envs = envs_lib.make_train_envs(config)
            self.stepper = VecStepper(self.envs, config.env_id, on_episode=self.stats.add)
        self.algo = algorithm(config, self.spaces, self.stepper)
        if self.workers is not None:
            self.workers.attach(self.algo)

    def _close_experience(self) -> None:
        if self.envs is not None:
            self.envs.close()
        if self.workers is not None:
            self.workers.close()

    # --- checkpoint content, declared once ---------------------------------------------------
    def _parts(self) -> dict:
        return {"run": self.progress, "episodes": self.stats, "eval": self.evaluator.state}

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"{part}/{k}": v for part, obj in self._parts().items() for k, v in dataclass_arrays(obj).items()}
        arrays["run/env_steps"] = np.int64(self.stepper.env_steps)
        arrays["run/train_seconds"] = np.float64(self.train_seconds)
        for i, value in enumerate(self.evaluator.best_variables or []):
            arrays[f"eval/best_variable_{i}"] = value
        arrays.update({f"algo/{k}": v for k, v in self.algo.state().items()})
        return arrays

    def _resume(self, validated: RestoreResult | None) -> None:
        arrays = self.checkpoint.restore(validated=validated)
        fallback = self.checkpoint.last_restore.message()   # which damaged checkpoints were skipped, which is used
        if fallback:
            print(fallback, file=sys.stderr, flush=True)
        for part, obj in self._parts().items():
            load_dataclass_arrays(obj, {k[len(part) + 1:]: v for k, v in arrays.items() if k.startswith(part + "/")})
        if self.evaluator.best_variables is not None:
            self.evaluator.best_variables = [arrays[f"eval/best_variable_{i}"]
                                             for i in range(len(self.evaluator.best_variables))]
        self.algo.load_state({k[len("algo/"):]: v for k, v in arrays.items() if k.startswith("algo/")})
        self.stepper.env_steps = int(arrays["run/env_steps"])
        self._seconds_before = float(arrays["run/train_seconds"])
        self.stepper.restart(env_reset_seed(self.config.seed, self.stepper.env_steps))

    def save_checkpoint(self) -> str:
        return self.checkpoint.save(self.stepper.env_steps, self._arrays())

    def _checkpointed_here(self) -> bool:
        """Whether the latest checkpoint is at this env step (a signal came right after a checkpoint, or a
        resume): it is kept, not rewritten -- it holds the state before the envs restarted, which a resume
        restarts the same way, and a rewrite would differ from an uninterrupted run's checkpoint."""
        latest = self.checkpoint.latest()
        return latest is not None and os.path.basename(latest) == f"ckpt-{self.stepper.env_steps}"

    def _checkpoint_if_due(self) -> None:
        every, steps = self.config.checkpoint_every, self.stepper.env_steps
        if not every or steps < self.progress.next_checkpoint:
            return
        self.progress.next_checkpoint = (steps // every + 1) * every
        self.save_checkpoint()
        self.stepper.restart(env_reset_seed(self.config.seed, steps))

    # --- the loop ------------------------------------------------------------------------------
    @property
    def train_seconds(self) -> float:
        return self._seconds_before + (0.0 if self._t0 is None else time.perf_counter() - self._t0)

    def _solved(self) -> bool:
        threshold = self.config.stop_reward
        if self.config.stop_on == "eval":
            return threshold is not None and self.evaluator.state.eval_reward >= threshold
        return self.stats.solved(threshold)

    def should_stop(self) -> bool:
        return (self.signals.received is not None or self.stepper.env_steps >= self.config.total_steps
                or self._solved())

    def run(self) -> RunResult:
        with self.signals:
            try:
                self._t0 = time.perf_counter()
                while not self.should_stop():
                    self._after_iteration(self.algo.iteration())
            except BaseException:
                self.logger.close()
                self.evaluator.close()
                raise
            finally:
                self._close_experience()
            return self._finish()

    def _after_iteration(self, iteration: Iteration) -> None:
        self._guard(iteration.finite)
        steps = self.stepper.env_steps
        self.evaluator.maybe_evaluate(steps)
        if iteration.log or self.should_stop():
            self._log(steps, iteration)
        if iteration.updated:
            self.progress.updates += 1
            if self.workers is not None:
                self.workers.policy_updated()
            self._checkpoint_if_due()

    def _log(self, steps: int, iteration: Iteration) -> None:
        seconds = self.train_seconds
        steps_per_s = steps / seconds if seconds > 0 else 0.0
        self.logger.scalars(steps, {"reward": self.stats.last_return, "reward_100": self.stats.reward_100,
                                    "episodes": self.stats.episodes, "length_100": self.stats.length_100,
                                    "steps_per_second": steps_per_s,
                                    "nonfinite_updates": self.progress.nonfinite_updates,
                                    **(self.workers.metrics() if self.workers is not None else {}),
                                    **(iteration.metrics() if callable(iteration.metrics) else iteration.metrics)})
        if iteration.histograms:
            self.logger.histograms(steps, iteration.histograms)
        self.logger.progress(steps, self.stats.reward_100, steps_per_s)

    def _guard(self, finite) -> None:
        """Count skipped (non-finite) gradient steps; give up after `max_nonfinite` in a row."""
        p = self.progress
        for ok in finite:
            p.nonfinite_in_a_row = 0 if ok else p.nonfinite_in_a_row + 1
            p.nonfinite_updates += not ok
            if p.nonfinite_in_a_row >= self.config.max_nonfinite:
                last = self.checkpoint.latest()
                where = f"; the last good checkpoint is {last}" if last else ""
                raise TrainingError(f"{p.nonfinite_in_a_row} updates in a row had a non-finite loss or gradient "
                                    f"at env step {self.stepper.env_steps}{where}; lower --lr or set --grad-clip")

    # --- the end -------------------------------------------------------------------------------
    def _finish(self) -> RunResult:
        """With evaluation on, a last one scores the final policy unless the last one saw it (not in
        train_seconds); the export is the best evaluated policy with --export-best."""
        seconds = self.train_seconds
        state = self.evaluator.state
        if self.signals.received is not None:
            if not self._checkpointed_here():
                self.save_checkpoint()
        elif self.config.eval_every and state.eval_env_steps != self.stepper.env_steps:
            self.evaluator.evaluate(self.stepper.env_steps)
        self.evaluator.close()
        self.logger.close()
        result = RunResult(self.run_dir, self.export_path, self.stepper.env_steps, self.stats.episodes,
                           self.stats.reward_100, self._solved(), seconds, self.signals.received, state.eval_reward,
                           state.eval_env_steps, state.eval_seconds, state.evaluations)
        if self.export_path:
            try:
                self._export(result)
            except SaveError as e:
                raise SaveError(f"{e}; {self._resume_advice()}") from e
        write_json_atomically(os.path.join(self.run_dir, "summary.json"), {
            **result.__dict__, "steps_per_s": result.steps_per_s, "updates": self.progress.updates,
            "nonfinite_updates": self.progress.nonfinite_updates,
            **({"workers": self.workers.summary()} if self.workers is not None else {})})
        return result

    def _resume_advice(self) -> str:
        """What a run whose export failed can do: resume from its last good checkpoint, which re-exports."""
        last = last_good_checkpoint(self.checkpoint.directory)
        if last is None:
            return "the run has no checkpoint to resume from (train with --checkpoint-every N)"
        return (f"the last good checkpoint is {last}; fix the cause, then finish the run and its export with: "
                f"python train.py --resume {self.run_dir}")

    def _export(self, result: RunResult) -> None:
        policy, state = self.algo.policy, self.evaluator.state
        exported_from = {"env_steps": result.env_steps, "eval_reward": state.eval_reward if state.evaluations else None}
        final = None
        if self.evaluator.best_is_better():
            final = snapshot_variables(policy)
            restore_variables(policy, self.evaluator.best_variables)
            exported_from = {"env_steps": state.best_env_steps, "eval_reward": state.best_reward}
        metadata = policy_metadata(self.config, policy, self.spaces, result, exported_from)
        # The path was checked when the run started; replacing this run's own earlier export
        # (written at an interrupt) is what a resumed run must do.
        export_policy(policy, metadata, self.export_path, overwrite=True)
        if final is not None:
            restore_variables(policy, final)


def train(config: RunConfig, run_dir: str, export_path: str | None, resume: bool = False,
          validated: RestoreResult | None = None) -> RunResult:
    """Train the registered algorithm `config.algo` (`validated`: see `Trainer`)."""
    from tfpg.algos import REGISTRY

    set_intra_op_threads(config.intra_op_threads)
    if config.backend == "graph":   # the env as TF ops, each iteration one compiled program (tfpg.training.graph_trainer)
        from tfpg.training.graph_trainer import GraphTrainer

        return GraphTrainer(REGISTRY[config.algo], config, run_dir, export_path, resume).run()
    return Trainer(REGISTRY[config.algo], config, run_dir, export_path, resume, validated).run()


def set_intra_op_threads(threads: int) -> None:
    """--intra-op-threads: TensorFlow's thread pool can be sized only before its runtime starts (the first op of
    the process); later a warning says it was not applied."""
    if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:
            warnings.warn(f"--intra-op-threads {threads} not applied: TensorFlow's runtime had already started",
                          stacklevel=2)
