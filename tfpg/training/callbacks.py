"""Callbacks: what runs at the training loop's four moments, for the user's own code and for tfpg's options.

    on_training_start(loop)   before the first iteration of a learn() call
    on_iteration(info)        after each iteration, once per agent (the graph backend trains K at once);
                              returning False stops the run cleanly: checkpoint, and (tfpg.train, the CLI)
                              the last evaluation, the export and summary.json
    on_evaluation(info)       after each greedy evaluation
    on_training_end(result)   when learn() returns, with the RunResult

What the options --eval-every, --stop-reward, --checkpoint-every and --export-best do is written as the
callbacks below, which `builtin_callbacks` puts before (evaluation, stop test) and after (checkpoint) the
user's own; their counters stay in the checkpointed state they always had (`EvaluationState`, `Progress`),
so run folders from before read the same.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The loop (tfpg.training.loop.TrainingLoop) and its RunResult import this module, so they are not imported here.
TrainingLoop = Any
RunResult = Any


@dataclass
class IterationInfo:
    """One agent's view of one iteration. `metrics` are computed when first read (DQN iterates every vector
    step, and reading its variables each time would cost more than the step)."""

    agent: int                  # 0 .. num_agents - 1 (seed = --seed + agent on the graph backend)
    num_agents: int
    env_steps: int              # the agent's env steps so far
    updated: bool               # whether this iteration changed the policy
    _stats: Any = field(repr=False, default=None)   # the agent's EpisodeStats, read when asked (a mean of 100)
    _metrics: Callable[[], dict] = field(repr=False, default=dict)
    _cached: dict | None = field(repr=False, default=None)

    @property
    def episodes(self) -> int:
        return self._stats.episodes

    @property
    def reward_100(self) -> float:
        """Mean return of the last 100 training episodes (NaN before the first)."""
        return self._stats.reward_100

    @property
    def metrics(self) -> dict[str, float]:
        """The algorithm's logged values of this iteration (loss, entropy, KL, ...)."""
        if self._cached is None:
            self._cached = dict(self._metrics())
        return self._cached


@dataclass
class EvaluationInfo:
    """One greedy evaluation of one agent."""

    agent: int
    env_steps: int
    mean_return: float
    returns: np.ndarray


class Callback:
    """Base class of callbacks; override what you need. Returning False from `on_iteration` (or from
    `on_training_start`) stops the run."""

    def on_training_start(self, loop: TrainingLoop) -> bool | None:
        """Before the first iteration of a learn() call; `loop.agents`, `loop.config`, `loop.env_steps` are set."""

    def on_iteration(self, info: IterationInfo) -> bool | None:
        """After each iteration, once per agent."""

    def on_evaluation(self, info: EvaluationInfo) -> None:
        """After each greedy evaluation."""

    def on_training_end(self, result: RunResult) -> None:
        """When learn() returns."""


class EvaluateEvery(Callback):
    """--eval-every N: a greedy evaluation of `--eval-episodes` episodes every N env steps."""

    def on_training_start(self, loop: TrainingLoop) -> None:
        self.loop = loop

    def on_iteration(self, info: IterationInfo) -> None:
        agent = self.loop.agents[info.agent]
        if agent.evaluator.due(info.env_steps):
            self.loop.evaluate_agent(info.agent, periodic=True)


class StopAtReward(Callback):
    """--stop-reward R: stop once every agent's --stop-on measure (reward_100 of training episodes over a full
    window of 100, or the last greedy evaluation's mean) reaches R. A solved run ends without a checkpoint."""

    def on_training_start(self, loop: TrainingLoop) -> None:
        self.loop = loop
        self._check()

    def on_iteration(self, info: IterationInfo) -> None:
        if info.agent == info.num_agents - 1:
            self._check()

    def _check(self) -> None:
        if all(self.loop.solved(agent) for agent in self.loop.agents):
            self.loop.request_stop(checkpoint=False)


class CheckpointEvery(Callback):
    """--checkpoint-every N: a checkpoint after the first update at or past each multiple of N env steps (after
    the last agent's callbacks: a checkpoint holds every agent)."""

    def __init__(self, every: int):
        self.every = every

    def on_training_start(self, loop: TrainingLoop) -> None:
        self.loop = loop

    def on_iteration(self, info: IterationInfo) -> None:
        progress = self.loop.progress
        if not info.updated or info.agent != info.num_agents - 1 or info.env_steps < progress.next_checkpoint:
            return
        progress.next_checkpoint = (info.env_steps // self.every + 1) * self.every
        self.loop.checkpoint_now()


class ExportBest(Callback):
    """--export-best: keep the variables of each agent's best greedy evaluation; the export writes those when
    they scored higher than the last evaluation."""

    def on_training_start(self, loop: TrainingLoop) -> None:
        self.loop = loop

    def on_evaluation(self, info: EvaluationInfo) -> None:
        evaluator = self.loop.agents[info.agent].evaluator
        state = evaluator.state
        if info.mean_return > state.best_reward:
            state.best_reward, state.best_env_steps = info.mean_return, info.env_steps
            evaluator.best_variables = evaluator.snapshot()


def builtin_callbacks(config: Any) -> tuple[list[Callback], list[Callback]]:
    """(before the user's, after the user's): the callbacks a run's options ask for."""
    before: list[Callback] = []
    if config.eval_every:
        before.append(EvaluateEvery())
    if config.export_best:
        before.append(ExportBest())
    if config.stop_reward is not None:
        before.append(StopAtReward())
    after: list[Callback] = [CheckpointEvery(config.checkpoint_every)] if config.checkpoint_every else []
    return before, after
