"""Opt-in capabilities of an algorithm beyond the contract of `tfpg.algos.base.Algorithm`.

An algorithm derives from these mixins to declare what it supports; the run checks
(`tfpg.training.checks`) refuse `--workers` or `--backend graph` for one that does not.

- `Distributable`: rollout workers on Ray (`--workers N`, `tfpg.backends.ray`). The algorithm collects
  only through `self.collector` (a `tfpg.experience.collectors` collector). The trainer then builds it on a
  stepper that only counts (the envs live on the workers) and puts a stand-in with the same `collect(...)`
  and batch type in place of its collector; each worker builds `actor(config, spaces, stepper)` on its
  own envs, whose `policy` variables the learner broadcasts before collecting and whose `reseed(seed)`
  re-seeds its acting; `worker_request` may ask each worker for something of its own (DQN's
  per-worker epsilon).
- `GraphTrainable`: `--backend graph` (`tfpg.training.graph_trainer`). The algorithm names a graph
  learner (`graph_learner(config, spaces, template, seeds)`, in its folder's `graph.py`) that trains
  K stacked agents on in-graph envs, and refuses the options that learner does not implement.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfpg.config.run import RunConfig


def reseed_policy(policy, seed: int) -> None:
    """Re-seed a policy's sampling generator (a tf.random.Generator), if it has one."""
    rng = getattr(policy, "rng", None)
    if rng is not None and hasattr(rng, "reset_from_seed"):
        rng.reset_from_seed(seed)


@dataclass
class PolicyActor:
    """A `Distributable.actor` of an algorithm whose acting needs only its policy and collector: a rollout
    worker then builds no optimizer, baseline, critic or update graph (less start-up time and memory)."""

    policy: Any
    collector: Any

    def reseed(self, seed: int) -> None:
        reseed_policy(self.policy, seed)


class Distributable:
    """Collects only through `self.collector`, so that `--workers N` can collect on Ray actors."""

    policy: Any
    collector: Any

    @classmethod
    def actor(cls, config: RunConfig, spaces, stepper) -> Any:
        """What a rollout worker builds on its own envs: an object with `policy`, `collector` (the same kind
        as the algorithm's) and `reseed(seed)`. By default the algorithm itself; override to leave out
        what only learning needs (a replay buffer, optimizers)."""
        return cls(config, spaces, stepper)

    def reseed(self, seed: int) -> None:
        """Re-seed the generators that drive acting (a worker's copy after a checkpoint or a restart)."""
        reseed_policy(self.policy, seed)

    def worker_request(self, request: dict, index: int, workers: int) -> dict:
        """What rollout worker `index` of `workers` is asked for when the algorithm asks its collector for
        `request` (after the collector class's split_request); by default the same for every worker."""
        return request


class GraphTrainable:
    """Has a learner for `--backend graph`: K agents trained in one XLA-compiled program per iteration."""

    @classmethod
    def check_graph_backend(cls, config: RunConfig) -> None:
        """Refuse (ConfigError, one line) the options of `config` that the graph learner does not implement."""

    @classmethod
    def graph_learner(cls, config: RunConfig, spaces, template, seeds: list[int]):
        """The learner the graph trainer compiles: `policy` (a StackedPolicy), `rollout_steps`, `trackables`
        and `learn(rollout) -> ({metric: [K]}, finite)`."""
        raise NotImplementedError
