"""dqn"""
from tfpg.algos.dqn.algorithm import DQN

__all__ = ["DQN"]
