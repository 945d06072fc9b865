"""Classic-control environments as TensorFlow ops: batched, auto-resetting, XLA-compilable.

    env = make("CartPole-v1")
    key = make_key(0)
    reset_key, key = split_key(key)
    state, obs = env.reset(reset_key, 64)
    out = env.step(state, actions, step_key)   # StepOutput(state, obs, reward, terminated, truncated, final_obs)

See `tfpg.envs.graph.core` for the state layout and the same-step auto-reset convention.
"""
from __future__ import annotations

import tensorflow as tf

from tfpg.envs.graph.acrobot import Acrobot
from tfpg.envs.graph.cartpole import CartPole
from tfpg.envs.graph.core import EnvState, GraphEnv, StepOutput, key_sequence, make_key, split_key
from tfpg.envs.graph.mountain_car import MountainCar, MountainCarContinuous
from tfpg.envs.graph.pendulum import Pendulum

GRAPH_ENVS: dict[str, type[GraphEnv]] = {
    env.env_id: env for env in (CartPole, Acrobot, MountainCar, MountainCarContinuous, Pendulum)
}


def has_graph_env(env_id: str) -> bool:
    """Whether `env_id` has an in-graph implementation."""
    return env_id in GRAPH_ENVS


def make(env_id: str, dtype: tf.DType = tf.float32) -> GraphEnv:
    """The in-graph env for a gymnasium id; KeyError naming the supported ids otherwise."""
    if env_id not in GRAPH_ENVS:
        raise KeyError(f"{env_id} has no TensorFlow implementation; these do: {', '.join(GRAPH_ENVS)}")
    return GRAPH_ENVS[env_id](dtype)


__all__ = ["GRAPH_ENVS", "Acrobot", "CartPole", "EnvState", "GraphEnv", "MountainCar", "MountainCarContinuous",
           "Pendulum", "StepOutput", "has_graph_env", "key_sequence", "make", "make_key", "split_key"]
