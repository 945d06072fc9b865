"""ppo"""
from tfpg.algos.ppo.algorithm import PPO

__all__ = ["PPO"]
