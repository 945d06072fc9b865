"""reinforce"""
from tfpg.algos.reinforce.algorithm import Reinforce

__all__ = ["Reinforce"]
