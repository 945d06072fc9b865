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

Experience comes from `LocalEnvs` (the envs in this process) or, with --workers, from Ray actors
(`tfpg.backends.ray.workers.WorkerPool`): the same small interface, chosen once when the trainer is
built. With workers the stepper here only counts what they hand back and passes re-seeding on to
them, and the algorithm's collector is replaced by a stand-in that collects on the workers; the loop
above does not change. What both trainers share is `tfpg.training.loop.TrainingLoop`.
"""
from __future__ import annotations

import sys
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfpg.algos.base import Algorithm, Iteration
from tfpg.config.run import RunConfig
from tfpg.core.checkpoint import (
    RestoreResult,
    TrainingCheckpoint,
    dataclass_arrays,
    env_reset_seed,
    load_dataclass_arrays,
)
from tfpg.envs import make as envs_lib
from tfpg.envs.stepping import VecStepper
from tfpg.models.policies import snapshot_variables
from tfpg.training.evaluation import Evaluator
from tfpg.training.logger import RunLogger
from tfpg.training.loop import Agent, Progress, RunResult, TrainingLoop


class LocalEnvs:
    """The run's envs in this process, stepped by one VecStepper. The other source of experience,
    `tfpg.backends.ray.workers.WorkerPool`, has the same members."""

    def __init__(self, config: RunConfig, on_episode):
        self.envs = envs_lib.make_train_envs(config)
        self.stepper = VecStepper(self.envs, config.env_id, on_episode=on_episode)

    def attach(self, algorithm: Algorithm) -> None:
        """Nothing to replace: the algorithm collects on this stepper."""

    def policy_updated(self) -> None:
        """Nothing to send: acting uses the algorithm's own policy."""

    def metrics(self) -> dict[str, float]:
        return {}

    def summary_fields(self) -> dict:
        return {}

    def close(self) -> None:
        self.envs.close()


class Trainer(TrainingLoop):
    """Trains one algorithm with one config on gymnasium envs; `run()` returns the RunResult."""

    def __init__(self, algorithm: type[Algorithm], config: RunConfig, run_dir: str, export_path: str | None,
                 resume: bool = False, validated: RestoreResult | None = None):
        """`validated`: with `resume`, the checkpoint `find_intact_checkpoint` chose (it is not read twice)."""
        super().__init__()
        keras.utils.set_random_seed(config.seed)
        self.config, self.run_dir, self.export_path = config, run_dir, export_path
        self.spaces = envs_lib.env_spaces(config.env_id, config.env_kwargs)
        self.agent = Agent(config.seed, config, run_dir, export_path)
        self.agents = [self.agent]
        self.experience = None
        try:
            self._build_experience(algorithm)
        except BaseException:
            if self.experience is not None:
                self.experience.close()
            raise
        self.progress = Progress(next_checkpoint=config.checkpoint_every)
        self.agent.evaluator = Evaluator(config, self.algo.policy.greedy_numpy,
                                         lambda: snapshot_variables(self.algo.policy),
                                         lambda steps, values: self.agent.logger.scalars(steps, values))
        self.trackables = self.algo.trackables()
        self.checkpoint = TrainingCheckpoint(run_dir, self.trackables, self._checkpoint_arrays())
        if resume:   # before the logger: a checkpoint that does not fit leaves the run folder as it was
            self._resume(validated)
        self.agent.logger = RunLogger(run_dir, config.to_dict(), config.total_steps, progress=config.progress,
                                      append=resume, hparams=config.hparams(),
                                      metrics=("reward_100", "eval/reward", algorithm.loss_metric))

    def _build_experience(self, algorithm: type[Algorithm]) -> None:
        """Envs + stepping core in this process, or Ray rollout workers with --workers."""
        config = self.config
        if config.workers:
            from tfpg.backends.ray.workers import WorkerPool  # Ray is imported only when it is asked for

            self.experience = WorkerPool(algorithm, config, self.spaces, self.agent.stats.add)
        else:
            self.experience = LocalEnvs(config, self.agent.stats.add)
        self.stepper = self.experience.stepper
        self.algo = algorithm(config, self.spaces, self.stepper)
        self.experience.attach(self.algo)

    @property
    def env_steps(self) -> int:
        return self.stepper.env_steps

    @property
    def stats(self):
        return self.agent.stats

    def _select(self, k: int):
        return self.algo.policy

    def _close(self) -> None:
        self.experience.close()

    def _summary_fields(self, agent: Agent) -> dict:
        return self.experience.summary_fields()

    # --- checkpoint content, declared once ---------------------------------------------------
    def _parts(self) -> dict:
        return {"run": self.progress, "episodes": self.agent.stats, "eval": self.agent.evaluator.state}

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"{part}/{k}": v for part, obj in self._parts().items() for k, v in dataclass_arrays(obj).items()}
        arrays["run/env_steps"] = np.int64(self.stepper.env_steps)
        arrays["run/train_seconds"] = np.float64(self.train_seconds)
        for i, value in enumerate(self.agent.evaluator.best_variables or []):
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
        evaluator = self.agent.evaluator
        if evaluator.best_variables is not None:
            evaluator.best_variables = [arrays[f"eval/best_variable_{i}"] for i in range(len(evaluator.best_variables))]
        self.algo.load_state({k[len("algo/"):]: v for k, v in arrays.items() if k.startswith("algo/")})
        self.stepper.env_steps = int(arrays["run/env_steps"])
        self._seconds_before = float(arrays["run/train_seconds"])
        self.stepper.restart(env_reset_seed(self.config.seed, self.stepper.env_steps))

    def checkpoint_now(self, run_dir: str | None = None) -> str:
        """A checkpoint, then the envs restart from env_reset_seed(seed, env_steps), as a resumed run's do."""
        path = self.save_checkpoint(run_dir)
        self.stepper.restart(env_reset_seed(self.config.seed, self.stepper.env_steps))
        return path

    # --- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        self._t0 = time.perf_counter()
        while not self.should_stop():
            self._after_iteration(self.algo.iteration())

    def _after_iteration(self, iteration: Iteration) -> None:
        self._guard(iteration.finite)
        steps = self.stepper.env_steps
        if iteration.updated:
            self.progress.updates += 1
            self.experience.policy_updated()
        metrics = iteration.metrics if callable(iteration.metrics) else lambda: iteration.metrics
        # evaluation, the stop test, the user's callbacks, the checkpoint
        self.after_iteration_callbacks(0, dict(env_steps=steps, updated=iteration.updated), metrics)
        if iteration.log or self.should_stop():
            self._log(steps, iteration)

    def _log(self, steps: int, iteration: Iteration) -> None:
        seconds, stats, logger = self.train_seconds, self.agent.stats, self.agent.logger
        steps_per_s = steps / seconds if seconds > 0 else 0.0
        logger.scalars(steps, {"reward": stats.last_return, "reward_100": stats.reward_100,
                               "episodes": stats.episodes, "length_100": stats.length_100,
                               "steps_per_second": steps_per_s,
                               "nonfinite_updates": self.progress.nonfinite_updates,
                               **self.experience.metrics(),
                               **(iteration.metrics() if callable(iteration.metrics) else iteration.metrics)})
        if iteration.histograms:
            logger.histograms(steps, iteration.histograms)
        logger.progress(steps, stats.reward_100, steps_per_s)


def build_trainer(config: RunConfig, run_dir: str, export_path: str | None, resume: bool = False,
                  validated: RestoreResult | None = None) -> TrainingLoop:
    """The trainer of the registered algorithm `config.algo` (`validated`: see `Trainer`): the gymnasium one,
    or with --backend graph the graph backend's (the env as TF ops, each iteration one compiled program)."""
    from tfpg.algos.registry import REGISTRY

    set_intra_op_threads(config.intra_op_threads)
    if config.backend == "graph":
        from tfpg.training.graph_trainer import GraphTrainer

        return GraphTrainer(REGISTRY[config.algo], config, run_dir, export_path, resume)
    return Trainer(REGISTRY[config.algo], config, run_dir, export_path, resume, validated)


def train(config: RunConfig, run_dir: str, export_path: str | None, resume: bool = False,
          validated: RestoreResult | None = None) -> RunResult:
    """Train `config` to its --total-steps, then evaluate, export and summarise (TrainingLoop.run)."""
    return build_trainer(config, run_dir, export_path, resume, validated).run()


def set_intra_op_threads(threads: int) -> None:
    """--intra-op-threads: TensorFlow's thread pool can be sized only before its runtime starts (the first op of
    the process); later a warning says it was not applied."""
    if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:
            warnings.warn(f"--intra-op-threads {threads} not applied: TensorFlow's runtime had already started",
                          stacklevel=2)
