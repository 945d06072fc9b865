"""The base of the actor-critic algorithms (A2C, PPO, TRPO/NPG): what they share around their updates.

Not an algorithm itself and not registered; the maths they share is in `tfpg.algos.actor_critic`.
"""
from __future__ import annotations

import gymnasium as gym

from tfpg.algos.actor_critic import (ActorCritic, ActorCriticBatch, ActorCriticConfig, build_collector, build_policy,
                               make_kl_and_entropy)
from tfpg.algos.base import Algorithm, PolicyActor


class ActorCriticAlgorithm(Algorithm):
    """What A2C, PPO and TRPO/NPG share around their updates: the core, its checkpoint arrays, and the
    diagnostics of a batch after the update (KL(pi_old || pi), entropy, explained variance, ...)."""

    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)
    distributable = True   # the core collects only through `collector` (below)

    @classmethod
    def actor(cls, config: ActorCriticConfig, spaces, stepper) -> PolicyActor:
        """A rollout worker: the policy and a fixed-horizon collector, no critic or optimizer. It acts with the
        learner's broadcast variables, which include the observation statistics, so it normalises as the
        learner's policy did when it sent them; its rollouts hold raw observations, and only the learner
        adds them to the statistics."""
        policy = build_policy(config, spaces)
        return PolicyActor(policy, build_collector(config, policy, stepper))

    @property
    def collector(self):
        """The core's collector; --workers puts its stand-in here (`tfpg.backends.ray.workers.WorkerPool.attach`)."""
        return self.core.collector

    @collector.setter
    def collector(self, collector) -> None:
        self.core.collector = collector

    def _build_core(self, config: ActorCriticConfig, spaces, stepper, **core_options) -> None:
        self.config, self.stepper = config, stepper
        self.core = ActorCritic(config, spaces, stepper, **core_options)
        self.policy = self.core.policy
        self.kl_and_entropy = make_kl_and_entropy(self.policy)

    def state(self) -> dict:
        return self.core.state()

    def load_state(self, state: dict) -> None:
        self.core.load_state(state)

    def batch_diagnostics(self, batch: ActorCriticBatch) -> dict:
        kl, entropy = (float(x) for x in self.kl_and_entropy(batch.observations, batch.params))
        return self.core.diagnostics(batch, kl, entropy)
