"""The algorithm contract: what an algorithm provides, and nothing the trainer already does.

An algorithm is one folder `tfpg/algos/<name>/` (its config dataclass, its presets, the class) and one
registry line in `tfpg/algos/__init__.py`:

    class MyAlgo(Algorithm):
        name = "myalgo"                                   # --algo myalgo
        config_class = MyConfig                           # dataclass of option() fields
        action_spaces = (gym.spaces.Discrete,)            # what its policies can drive
        loss_metric = "loss"                              # a logged tag, shown in TensorBoard's HPARAMS
        presets = (Preset(...), ...)                      # named settings, each citing its source

        def __init__(self, config, spaces, stepper): ...  # build networks, optimizers, collector
        def iteration(self) -> Iteration: ...             # collect -> learn -> metrics, once
        # checkpoint content: trackables() (TF objects) and state()/load_state() (numpy arrays)
        # self.policy: what is evaluated and exported (see tfpg.export.saved_model)

The trainer (`tfpg.training.trainer.Trainer`, on the loop it shares with the graph backend's trainer,
`tfpg.training.loop.TrainingLoop`) owns seeding, envs, the loop, checkpoints and resume, signals, the
non-finite guard, logging, evaluation, export and summary.json; the algorithm never calls it.

Experience comes from `stepper` (`tfpg.envs.stepping.VecStepper`): the trainer's vector env with
NEXT_STEP autoreset handled once. Collectors (`tfpg.experience.collectors`) build episodes or n-step
windows on it; `stepper.env_steps` counts real transitions. After a checkpoint the trainer re-seeds the
envs through the stepper, and collectors drop what they held of the cut episodes.

Rollout workers on Ray and the graph backend are opt-in capabilities, not part of this contract: an
algorithm that supports them also derives from `tfpg.algos.capabilities.Distributable` or
`tfpg.algos.capabilities.GraphTrainable`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from tfpg.config.run import Preset, RunConfig
from tfpg.core.errors import ConfigError
from tfpg.envs.make import EnvSpaces


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

    policy: Any   # what is evaluated and exported

    @classmethod
    def check_spaces(cls, config: RunConfig, spaces: EnvSpaces) -> None:
        """Refuse an env this algorithm cannot handle (ConfigError, one line); runs before anything is built."""
        if not isinstance(spaces.action_space, cls.action_spaces):
            names = " or ".join(a.__name__ for a in cls.action_spaces)
            raise ConfigError(f"--algo {cls.name} needs a {names} action space, but {config.env_id} has "
                              f"{spaces.action_space}; pick another env")

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
