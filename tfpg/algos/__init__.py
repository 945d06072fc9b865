"""The algorithms: the contract (`base`), its opt-in capabilities, one folder per algorithm, the registry.

Importing this package registers the built-in algorithms; `tfpg.algos.registry` holds the registry
and resolves a run's configuration from it. A new algorithm is one folder and one line below.
"""
from __future__ import annotations

from tfpg.algos.a2c.algorithm import A2C
from tfpg.algos.dqn.algorithm import DQN
from tfpg.algos.ppo.algorithm import PPO
from tfpg.algos.registry import REGISTRY, build_config, config_classes, find_preset, presets, register
from tfpg.algos.reinforce.algorithm import Reinforce
from tfpg.algos.trpo.algorithm import TRPO, NaturalPolicyGradient

for _algorithm in (Reinforce, DQN, A2C, PPO, TRPO, NaturalPolicyGradient):
    register(_algorithm)

__all__ = ["REGISTRY", "build_config", "config_classes", "find_preset", "presets", "register"]
