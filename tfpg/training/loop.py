"""What every trainer shares, written once: the agents' bookkeeping, the clock, the stop test, the
non-finite guard, the callbacks, the checkpoint at an interrupt, and the end of a run (last evaluation,
export, summary.json).

    learn(n):  with the stop signals handled and the callbacks set (tfpg.training.callbacks: the options'
               and the user's): _loop() · a checkpoint if a signal or a callback stopped it · summary.json
    _loop:     iterations until should_stop(): n env steps, the stop test, a callback, or SIGINT/SIGTERM;
               after each, every callback's on_iteration (evaluation, stop test, the user's, checkpoint)
    finish:    per agent: last evaluation · export · summary.json
    run:       learn() up to --total-steps · finish() · close()      (python train.py)

A trainer (`tfpg.training.trainer.Trainer` for gymnasium envs, `tfpg.training.graph_trainer.GraphTrainer`
for `--backend graph`) provides `_loop()`, `env_steps`, `_checkpoint_arrays()`, `_select(k)` (the
policy holding agent k's variables) and, where it has more to say, `_summary_fields(agent)`.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tfpg.config.run import RunConfig
from tfpg.core.checkpoint import TrainingCheckpoint, last_good_checkpoint
from tfpg.core.errors import EnvFailure, SaveError, TrainingError
from tfpg.export.saved_model import export_policy, policy_metadata
from tfpg.models.policies import restore_variables, snapshot_variables
from tfpg.training.callbacks import Callback, EvaluationInfo, IterationInfo, builtin_callbacks
from tfpg.training.logger import EpisodeStats, write_json_atomically
from tfpg.training.signals import StopSignals


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


class Agent:
    """One trained agent's bookkeeping: its seed, config, folder, export path, episode statistics, and (set by
    the trainer) its logger and evaluator. A gymnasium run has one; a graph run one per seed, each with
    its own folder RUN_DIR/seed_<s> and export EXPORT_DIR/<run-name>/seed_<s> when there are several."""

    def __init__(self, seed: int, config: RunConfig, run_dir: str, export_path: str | None, num_agents: int = 1):
        self.seed = seed
        self.config = dataclasses.replace(config, seed=seed, num_seeds=1) if num_agents > 1 else config
        self.run_dir = run_dir if num_agents == 1 else os.path.join(run_dir, f"seed_{seed}")
        self.export_path = export_path if export_path is None or num_agents == 1 else \
            os.path.join(export_path, f"seed_{seed}")
        self.stats = EpisodeStats()
        self.logger = self.evaluator = None


class TrainingLoop:
    """The base of both trainers; see the module docstring for what a trainer adds."""

    config: RunConfig
    run_dir: str
    export_path: str | None
    spaces: object
    agents: list[Agent]
    progress: Progress
    checkpoint: TrainingCheckpoint
    _t0: float | None = None        # the clock starts at the first iteration of this process
    _seconds_before: float = 0.0    # training time of the processes before a resume

    def __init__(self):
        self.signals = StopSignals()
        self.callbacks: list[Callback] = []
        self._until = 0
        self._target: int | None = None
        self._stop_requested: bool | None = None   # None: go on; else whether to checkpoint at the end

    # --- what a trainer provides -------------------------------------------------------------
    @property
    def env_steps(self) -> int:
        raise NotImplementedError

    def _loop(self) -> None:
        """Iterate until `should_stop()`, calling `after_iteration_callbacks` after each iteration."""
        raise NotImplementedError

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _select(self, k: int):
        """The policy that evaluates and exports agent k, holding agent k's variables."""
        raise NotImplementedError

    def checkpoint_now(self, run_dir: str | None = None) -> str:
        """Write a checkpoint that a resumed run continues from exactly (the gym trainer restarts its envs then),
        in this run's folder or in `run_dir` (with the run's config.json); returns its path."""
        return self.save_checkpoint(run_dir)

    def _close(self) -> None:
        """Release what the loop used (envs, workers), after it ends for whatever reason."""

    def _summary_fields(self, agent: Agent) -> dict:
        """What summary.json says besides the RunResult and the update counters."""
        return {}

    def _overall(self, results: list[RunResult], seconds: float) -> RunResult:
        """The whole run's result from each agent's (one agent: its own)."""
        return results[0]

    # --- the loop ------------------------------------------------------------------------------
    @property
    def train_seconds(self) -> float:
        return self._seconds_before + (0.0 if self._t0 is None else time.perf_counter() - self._t0)

    def solved(self, agent: Agent) -> bool:
        threshold = self.config.stop_reward
        if self.config.stop_on == "eval":
            return threshold is not None and agent.evaluator.state.eval_reward >= threshold
        return agent.stats.solved(threshold)

    def should_stop(self) -> bool:
        return self.signals.received is not None or self.env_steps >= self._until or self._stop_requested is not None

    def request_stop(self, checkpoint: bool = True) -> None:
        """End the run after this iteration (`checkpoint`: with a checkpoint to resume from, as at a signal)."""
        self._stop_requested = checkpoint if self._stop_requested is None else self._stop_requested or checkpoint

    def learn(self, steps: int | None = None, callbacks: Sequence[Callback] = ()) -> RunResult:
        """Train until the env steps reach the last learn()'s target + `steps` (the first call: the env steps so far
        + `steps`; None: --total-steps), or a callback, the stop test or SIGINT/SIGTERM ends it (an iteration
        collects a batch, so the run ends at the first iteration past the target); then a checkpoint if a signal or
        a callback stopped it, and each agent's summary.json. Another learn() continues where this one ended."""
        # steps: past the last learn()'s target (the first: past the env steps so far), so that learn(n) twice ends
        # where learn(2n) does, whichever iteration overshot a target
        start = self.env_steps if self._target is None else self._target
        self._until = self._target = self.config.total_steps if steps is None else start + steps
        before, after = builtin_callbacks(self.config)
        self.callbacks = [*before, *callbacks, *after]
        self._stop_requested = None
        self.signals.received = None
        for agent in self.agents:
            agent.logger.open_progress(self._until)
        with self.signals:
            try:
                if any(c.on_training_start(self) is False for c in self.callbacks):
                    self.request_stop()
                self._loop()
            except BaseException as e:
                self.close()
                if isinstance(e, EnvFailure):   # the env's fault: say where the run can continue from
                    raise EnvFailure(f"{e}; {self._resume_advice()}") from e
                raise
            return self._end_of_learn()

    def after_iteration_callbacks(self, k: int, info_fields: dict, metrics: Callable[[], dict]) -> None:
        """Agent k's on_iteration of every callback (built-in and the user's); a False stops the run."""
        if not self.callbacks:   # DQN iterates every vector step: nothing to build when no one listens
            return
        info = IterationInfo(agent=k, num_agents=len(self.agents), _stats=self.agents[k].stats, _metrics=metrics,
                             **info_fields)
        for callback in self.callbacks:
            if callback.on_iteration(info) is False:
                self.request_stop()

    def evaluate_agent(self, k: int, periodic: bool = False) -> None:
        """A greedy evaluation of agent k now (`periodic`: the --eval-every one, which moves its schedule on);
        then every callback's on_evaluation."""
        self._select(k)
        evaluator, steps = self.agents[k].evaluator, self.env_steps
        returns = evaluator.maybe_evaluate(steps) if periodic else evaluator.evaluate(steps)
        info = EvaluationInfo(k, steps, evaluator.state.eval_reward, returns)
        for callback in self.callbacks:
            callback.on_evaluation(info)

    def _guard(self, finite: Iterable[bool]) -> None:
        """Count skipped (non-finite) gradient steps; give up after `max_nonfinite` in a row."""
        p = self.progress
        for ok in finite:
            p.nonfinite_in_a_row = 0 if ok else p.nonfinite_in_a_row + 1
            p.nonfinite_updates += not ok
            if p.nonfinite_in_a_row >= self.config.max_nonfinite:
                last = self.checkpoint.latest()
                where = f"; the last good checkpoint is {last}" if last else ""
                raise TrainingError(f"{p.nonfinite_in_a_row} updates in a row had a non-finite loss or gradient "
                                    f"at env step {self.env_steps}{where}; lower --lr or set --grad-clip")

    # --- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, run_dir: str | None = None) -> str:
        """A checkpoint in this run's folder, or in another run folder `run_dir` (config.json written there)."""
        checkpoint, arrays = self.checkpoint, self._checkpoint_arrays()
        if run_dir is not None and os.path.abspath(run_dir) != os.path.abspath(self.run_dir):
            os.makedirs(run_dir, exist_ok=True)
            write_json_atomically(os.path.join(run_dir, "config.json"), self.config.to_dict())
            checkpoint = TrainingCheckpoint(run_dir, self.trackables, arrays)
        return checkpoint.save(self.env_steps, arrays)

    def _checkpointed_here(self) -> bool:
        """Whether the latest checkpoint is at this env step (a signal came right after a checkpoint, or a
        resume): it is kept, not rewritten -- it holds the state before the envs restarted, which a resume
        restarts the same way, and a rewrite would differ from an uninterrupted run's checkpoint."""
        latest = self.checkpoint.latest()
        return latest is not None and os.path.basename(latest) == f"ckpt-{self.env_steps}"

    # --- the end -------------------------------------------------------------------------------
    def _end_of_learn(self) -> RunResult:
        """A checkpoint if interrupted or stopped by a callback; each agent's summary.json; on_training_end."""
        steps = self.env_steps
        # the clock stops between learn() calls
        self._seconds_before, self._t0 = self.train_seconds, None
        if (self.signals.received is not None or self._stop_requested) and not self._checkpointed_here():
            self.save_checkpoint()
        for agent in self.agents:
            agent.logger.flush()
        result = self._results(steps)
        for callback in self.callbacks:
            callback.on_training_end(result)
        return result

    def _results(self, steps: int, seconds: float | None = None) -> RunResult:
        """Each agent's RunResult (and summary.json), and the run's (`seconds`: of training, default now)."""
        seconds = self.train_seconds if seconds is None else seconds
        results = []
        for agent in self.agents:
            result = self._agent_result(agent, steps, seconds)
            self._write_summary(agent.run_dir, result, **self._summary_fields(agent))
            results.append(result)
        return self._overall(results, seconds)

    def _agent_result(self, agent: Agent, steps: int, seconds: float) -> RunResult:
        state = agent.evaluator.state
        return RunResult(agent.run_dir, agent.export_path, steps, agent.stats.episodes, agent.stats.reward_100,
                         self.solved(agent), seconds, self.signals.received, state.eval_reward, state.eval_env_steps,
                         state.eval_seconds, state.evaluations)

    def finish(self) -> RunResult:
        """The end of a run (tfpg.train, the CLI): unless interrupted, a last evaluation of each agent when
        evaluation is on and the last one did not see this policy (not in train_seconds); each agent's export
        (if the run has an export path) and summary.json."""
        steps, seconds = self.env_steps, self.train_seconds
        interrupted = self.signals.received is not None
        for k, agent in enumerate(self.agents):
            if not interrupted and self.config.eval_every and agent.evaluator.state.eval_env_steps != steps:
                self.evaluate_agent(k)
        for k, agent in enumerate(self.agents):
            if agent.export_path:
                self.export_agent(k, agent.export_path)
        return self._results(steps, seconds)

    def run(self, callbacks: Sequence[Callback] = ()) -> RunResult:
        """Learn up to --total-steps, then `finish()` and `close()` (what `python train.py` does)."""
        self.learn(None, callbacks)
        try:
            return self.finish()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the envs or workers, close the loggers and evaluation envs."""
        try:
            self._close()
        finally:
            for agent in self.agents:
                agent.logger.close()
                agent.evaluator.close()

    def export_agent(self, k: int, path: str) -> None:
        """Agent k's SavedModel at `path` (replaced if there); SaveError with how to resume if the write fails."""
        result = self._agent_result(self.agents[k], self.env_steps, self.train_seconds)
        try:
            self._export(k, self.agents[k], result, path)
        except SaveError as e:
            raise SaveError(f"{e}; {self._resume_advice()}") from e

    def _write_summary(self, folder: str, result: RunResult, **fields) -> None:
        p = self.progress
        write_json_atomically(os.path.join(folder, "summary.json"), {
            **result.__dict__, "steps_per_s": result.steps_per_s, "updates": p.updates,
            "nonfinite_updates": p.nonfinite_updates, **fields})

    def _resume_advice(self) -> str:
        """What a run whose export failed can do: resume from its last good checkpoint, which re-exports."""
        last = last_good_checkpoint(self.checkpoint.directory)
        if last is None:
            return "the run has no checkpoint to resume from (train with --checkpoint-every N)"
        return (f"the last good checkpoint is {last}; fix the cause, then finish the run and its export with: "
                f"python train.py --resume {self.run_dir}")

    def _export(self, k: int, agent: Agent, result: RunResult, path: str) -> None:
        """Agent k's policy, or its best evaluated one (--export-best), whose variables are put back afterwards."""
        policy, state = self._select(k), agent.evaluator.state
        exported_from = {"env_steps": result.env_steps, "eval_reward": state.eval_reward if state.evaluations else None}
        final = None
        if agent.evaluator.best_is_better():
            final = snapshot_variables(policy)
            restore_variables(policy, agent.evaluator.best_variables)
            exported_from = {"env_steps": state.best_env_steps, "eval_reward": state.best_reward}
        metadata = policy_metadata(agent.config, policy, self.spaces, result, exported_from)
        # The path was checked when the run started; replacing this run's own earlier export
        # (written at an interrupt) is what a resumed run must do.
        export_policy(policy, metadata, path, overwrite=True)
        if final is not None:
            restore_variables(policy, final)
