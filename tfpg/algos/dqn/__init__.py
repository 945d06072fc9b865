"""DQN: its config (`config`), presets (`presets`) and algorithm (`algorithm`)."""
from tfpg.algos.dqn.algorithm import DQN

__all__ = ["DQN"]
