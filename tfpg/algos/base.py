"""The algorithm contract: what an algorithm provides, and nothing the trainer already does.

An algorithm is one class in one module:

    class MyAlgo(Algorithm):
        name = "myalgo"                                   # --algo myalgo
        config_class = MyConfig                           # dataclass of option() fields
        action_spaces = (gym.spaces.Discrete,)            # what its policies can drive
        loss_metric = "loss"                              # a logged tag, shown in TensorBoard's HPARAMS
        presets = (Preset(...), ...)                      # named settings, each citing its source

        def __init__(self, config, spaces, stepper): ...  # build networks, optimizers, collector
        def iteration(self) -> Iteration: ...             # collect -> learn -> metrics, once
        # --backend graph (optional): check_graph_backend(config) and graph_learner(...), see tfpg.training.graph_trainer
        # checkpoint content: trackables() (TF objects) and state()/load_state() (numpy arrays)
        # self.policy: what is evaluated and exported (see tfpg.export.saved_model)

and one registry line in `tfpg/algos/__init__.py`. The trainer (`tfpg.training.trainer`) owns seeding,
envs, the loop, checkpoints and resume, signals, the non-finite guard, logging, evaluation,
export and summary.json; the algorithm never calls it.

Experience comes from `stepper` (`tfpg.envs.stepping.VecStepper`): the trainer's vector env with
NEXT_STEP autoreset handled once. Collectors (`tfpg.experience.collectors`) build episodes or n-step windows on
it; `stepper.env_steps` counts real transitions. After a checkpoint the trainer re-seeds the
envs through the stepper, and collectors drop what they held of the cut episodes.

Rollout workers (--workers N, `tfpg.backends.ray.workers`) need nothing Ray-specific from an algorithm. One
that sets `distributable = True` collects only through `self.collector` (a `tfpg.experience.collectors`
collector). The trainer then builds it on a stepper that only counts (the envs live on the
workers) and puts a stand-in with the same `collect(...)` and batch type in place of its
collector; each worker builds `actor(config, spaces, stepper)` on its own envs, whose `policy`
variables the learner broadcasts before collecting and whose `reseed(seed)` re-seeds its acting;
`worker_request` may ask each worker for something of its own (DQN's per-worker epsilon).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from tfpg.config.run import Preset, RunConfig
from tfpg.envs.make import EnvSpaces
from tfpg.core.errors import ConfigError


def reseed_policy(policy, seed: int) -> None:
    """Re-seed a policy's sampling generator (a tf.random.Generator), if it has one."""
    rng = getattr(policy, "rng", None)
    if rng is not None and hasattr(rng, "reset_from_seed"):
        rng.reset_from_seed(seed)


@dataclass
class PolicyActor:
    """An `Algorithm.actor` of an algorithm whose acting needs only its policy and collector: a rollout worker
    then builds no optimizer, baseline, critic or update graph (less start-up time and memory per worker)."""

    policy: Any
    collector: Any

    def reseed(self, seed: int) -> None:
        reseed_policy(self.policy, seed)


@dataclass
class Iteration:
    """What one iteration hands back to the trainer.

    metrics:    scalars for TensorBoard at the current env step (the trainer adds reward_100 etc.), or a
                function returning them, called only when the trainer logs (DQN iterates every vector step)
    log:        whether to write them now (DQN logs every --log-every env steps, not every iteration)
    finite:     for each gradient step taken, whether it was applied (False: non-finite, skipped)
    updated:    whether the policy changed (counts as an update; checkpoints fall after updates)
    histograms: arrays for TensorBoard histograms, if any
    """

    metrics: dict[str, float] | Callable[[], dict[str, float]]
    log: bool = True
    finite: Sequence[bool] = ()
    updated: bool = True
    histograms: dict[str, np.ndarray] = field(default_factory=dict)


class Algorithm:
    """Base class of every algorithm; see the module docstring for the contract."""

    name: ClassVar[str]
    config_class: ClassVar[type[RunConfig]]
    action_spaces: ClassVar[tuple[type[gym.Space], ...]]
    loss_metric: ClassVar[str] = "loss"
    presets: ClassVar[tuple[Preset, ...]] = ()
    distributable: ClassVar[bool] = False   # collects only through self.collector: --workers can run it

    policy: Any
    collector: Any

    @classmethod
    def actor(cls, config: RunConfig, spaces: EnvSpaces, stepper) -> Any:
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

    @classmethod
    def check_spaces(cls, config: RunConfig, spaces: EnvSpaces) -> None:
        """Refuse an env this algorithm cannot handle (ConfigError, one line); runs before anything is built."""
        if not isinstance(spaces.action_space, cls.action_spaces):
            names = " or ".join(a.__name__ for a in cls.action_spaces)
            raise ConfigError(f"--algo {cls.name} needs a {names} action space, but {config.env_id} has "
                              f"{spaces.action_space}; pick another env")

    @classmethod
    def check_graph_backend(cls, config: RunConfig) -> None:
        """Refuse --backend graph (ConfigError, one line) unless this algorithm has a `graph_learner`
        (see `tfpg.training.graph_trainer`) that implements the options of `config`."""
        raise ConfigError(f"--backend graph is not implemented for --algo {cls.name}; use --backend gym")

    def iteration(self) -> Iteration:
        raise NotImplementedError

    def trackables(self) -> dict[str, Any]:
        """TF objects a checkpoint holds (networks, optimizers, tf.random.Generators, counters)."""
        return {}

    def state(self) -> dict[str, np.ndarray]:
        """Numpy arrays a checkpoint holds besides the trackables (RNG states, baseline statistics, replay)."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of `state()`, on a freshly built algorithm."""
