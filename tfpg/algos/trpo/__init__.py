"""trpo"""
from tfpg.algos.trpo.algorithm import TRPO, NaturalPolicyGradient

__all__ = ["TRPO", "NaturalPolicyGradient"]
