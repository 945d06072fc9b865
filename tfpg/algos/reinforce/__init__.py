"""REINFORCE and its family: config (`config`), presets (`presets`), algorithm (`algorithm`), graph learner (`graph`)."""
from tfpg.algos.reinforce.algorithm import Reinforce

__all__ = ["Reinforce"]
