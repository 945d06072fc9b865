"""a2c"""
from tfpg.algos.a2c.algorithm import A2C

__all__ = ["A2C"]
