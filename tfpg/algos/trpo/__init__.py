"""TRPO and NPG: its config (`config`), presets (`presets`) and algorithm (`algorithm`)."""
from tfpg.algos.trpo.algorithm import TRPO, NaturalPolicyGradient

__all__ = ["TRPO", "NaturalPolicyGradient"]
