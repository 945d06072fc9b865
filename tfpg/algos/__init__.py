"""The one registry of algorithms: name -> Algorithm class (see `tfpg.algos.base` for the contract).

The CLI's --algo choices, the action-space check, --list-presets, the default presets and the
README's tables all read it. Adding an algorithm is one module and one `register(...)` line here
(or a call of `register` from user code, before `tfpg.cli.main`).
"""
from __future__ import annotations

from tfpg.algos.base import Algorithm
from tfpg.config.run import Preset

REGISTRY: dict[str, type[Algorithm]] = {}


def register(algorithm: type[Algorithm]) -> type[Algorithm]:
    """Make `algorithm` available as --algo NAME (usable as a class decorator)."""
    REGISTRY[algorithm.name] = algorithm
    return algorithm


def presets() -> dict[str, Preset]:
    """Every registered algorithm's presets by name."""
    return {p.name: p for algorithm in REGISTRY.values() for p in algorithm.presets}


def config_classes() -> dict[str, type]:
    return {name: algorithm.config_class for name, algorithm in REGISTRY.items()}


from tfpg.algos.a2c.algorithm import A2C  # noqa: E402
from tfpg.algos.dqn.algorithm import DQN  # noqa: E402  (the modules import this package's base)
from tfpg.algos.ppo.algorithm import PPO  # noqa: E402
from tfpg.algos.reinforce.algorithm import Reinforce  # noqa: E402
from tfpg.algos.trpo.algorithm import TRPO, NaturalPolicyGradient  # noqa: E402

register(Reinforce)
register(DQN)
register(A2C)
register(PPO)
register(TRPO)
register(NaturalPolicyGradient)
