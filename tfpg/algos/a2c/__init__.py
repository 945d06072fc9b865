"""A2C: its config (`config`), presets (`presets`) and algorithm (`algorithm`)."""
from tfpg.algos.a2c.algorithm import A2C

__all__ = ["A2C"]
