"""PPO: its config (`config`), presets (`presets`), algorithm (`algorithm`) and graph-backend learner (`graph`)."""
from tfpg.algos.ppo.algorithm import PPO

__all__ = ["PPO"]
