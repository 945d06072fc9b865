"""What every trainer shares, written once: the agents' bookkeeping, the clock, the stop test, the
non-finite guard, the checkpoint at an interrupt, and the end of a run (last evaluation, export,
summary.json).

    run:    with the stop signals handled: _loop() (the trainer's own) · close · _finish()
    _loop:  iterations until should_stop(): the budget, every agent solved, or SIGINT/SIGTERM
    end:    checkpoint if interrupted · per agent: last evaluation · export · summary.json

A trainer (`tfpg.training.trainer.Trainer` for gymnasium envs, `tfpg.training.graph_trainer.GraphTrainer`
for `--backend graph`) provides `_loop()`, `env_steps`, `_checkpoint_arrays()`, `_select(k)` (the
policy holding agent k's variables) and, where it has more to say, `_summary_fields(agent)`.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tfpg.config.run import RunConfig
from tfpg.core.checkpoint import TrainingCheckpoint, last_good_checkpoint
from tfpg.core.errors import EnvFailure, SaveError, TrainingError
from tfpg.export.saved_model import export_policy, policy_metadata
from tfpg.models.policies import restore_variables, snapshot_variables
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

    # --- what a trainer provides -------------------------------------------------------------
    @property
    def env_steps(self) -> int:
        raise NotImplementedError

    def _loop(self) -> None:
        """Iterate until `should_stop()`."""
        raise NotImplementedError

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _select(self, k: int):
        """The policy that evaluates and exports agent k, holding agent k's variables."""
        raise NotImplementedError

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

    def _solved(self, agent: Agent) -> bool:
        threshold = self.config.stop_reward
        if self.config.stop_on == "eval":
            return threshold is not None and agent.evaluator.state.eval_reward >= threshold
        return agent.stats.solved(threshold)

    def should_stop(self) -> bool:
        return (self.signals.received is not None or self.env_steps >= self.config.total_steps
                or all(self._solved(agent) for agent in self.agents))

    def run(self) -> RunResult:
        with self.signals:
            try:
                self._loop()
            except BaseException as e:
                for agent in self.agents:
                    agent.logger.close()
                    agent.evaluator.close()
                if isinstance(e, EnvFailure):   # the env's fault: say where the run can continue from
                    raise EnvFailure(f"{e}; {self._resume_advice()}") from e
                raise
            finally:
                self._close()
            return self._finish()

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
    def save_checkpoint(self) -> str:
        return self.checkpoint.save(self.env_steps, self._checkpoint_arrays())

    def _checkpointed_here(self) -> bool:
        """Whether the latest checkpoint is at this env step (a signal came right after a checkpoint, or a
        resume): it is kept, not rewritten -- it holds the state before the envs restarted, which a resume
        restarts the same way, and a rewrite would differ from an uninterrupted run's checkpoint."""
        latest = self.checkpoint.latest()
        return latest is not None and os.path.basename(latest) == f"ckpt-{self.env_steps}"

    # --- the end -------------------------------------------------------------------------------
    def _finish(self) -> RunResult:
        """A checkpoint if interrupted; else, with evaluation on, a last one scores the final policy unless the last
        one saw it (not in train_seconds); each agent's export (its best evaluated policy with --export-best)."""
        seconds, steps = self.train_seconds, self.env_steps
        if self.signals.received is not None and not self._checkpointed_here():
            self.save_checkpoint()
        results = [self._finish_agent(k, agent, seconds, steps) for k, agent in enumerate(self.agents)]
        return self._overall(results, seconds)

    def _finish_agent(self, k: int, agent: Agent, seconds: float, steps: int) -> RunResult:
        state = agent.evaluator.state
        if self.signals.received is None and self.config.eval_every and state.eval_env_steps != steps:
            self._select(k)
            agent.evaluator.evaluate(steps)
        agent.evaluator.close()
        agent.logger.close()
        result = RunResult(agent.run_dir, agent.export_path, steps, agent.stats.episodes, agent.stats.reward_100,
                           self._solved(agent), seconds, self.signals.received, state.eval_reward,
                           state.eval_env_steps, state.eval_seconds, state.evaluations)
        if agent.export_path:
            try:
                self._export(k, agent, result)
            except SaveError as e:
                raise SaveError(f"{e}; {self._resume_advice()}") from e
        self._write_summary(agent.run_dir, result, **self._summary_fields(agent))
        return result

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

    def _export(self, k: int, agent: Agent, result: RunResult) -> None:
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
        export_policy(policy, metadata, agent.export_path, overwrite=True)
        if final is not None:
            restore_variables(policy, final)
