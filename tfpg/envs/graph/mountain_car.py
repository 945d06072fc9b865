"""MountainCar-v0 and MountainCarContinuous-v0 as TensorFlow ops (gymnasium 1.4)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import tensorflow as tf

from tfpg.envs.graph.core import GraphEnv, round_to_float32, uniform_rows

MIN_POSITION = -1.2
MAX_POSITION = 0.6
MAX_SPEED = 0.07
GRAVITY = 0.0025          # the slope term: -0.0025 cos(3 position)
_STATE_LOW = np.array([MIN_POSITION, -MAX_SPEED], dtype=np.float32)
_STATE_HIGH = np.array([MAX_POSITION, MAX_SPEED], dtype=np.float32)


def move_car(position: tf.Tensor, velocity: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Velocity clipped to ±0.07, position += velocity clipped to [-1.2, 0.6]; at the left wall an
    inelastic stop (velocity 0 if it still points left). `velocity` already holds the new push."""
    velocity = tf.clip_by_value(velocity, -MAX_SPEED, MAX_SPEED)
    position = tf.clip_by_value(position + velocity, MIN_POSITION, MAX_POSITION)
    at_left_wall = tf.equal(position, MIN_POSITION) & (velocity < 0)
    return position, tf.where(at_left_wall, tf.zeros_like(velocity), velocity)


def initial_car(key, n, dtype) -> tf.Tensor:
    """Position ~ U(-0.6, -0.4), velocity 0."""
    position = uniform_rows(key, n, [-0.6], [-0.4], dtype)
    return tf.concat([position, tf.zeros_like(position)], axis=1)


class MountainCar(GraphEnv):
    """A car in a valley, actions push left (0), nothing (1), right (2). Physics (position, velocity).

        velocity += (action - 1) 0.001 - 0.0025 cos(3 position), then `move_car`.
    Terminated when position >= 0.5 and velocity >= 0; reward -1 per step; truncated at 200.
    """

    env_id = "MountainCar-v0"
    max_episode_steps = 200
    observation_space = gym.spaces.Box(_STATE_LOW, _STATE_HIGH, dtype=np.float32)
    action_space = gym.spaces.Discrete(3)

    def initial_physics(self, key, n):
        return initial_car(key, n, self.dtype)

    def dynamics(self, physics, action):
        position, velocity = tf.unstack(physics, axis=1)
        push = (tf.cast(action, self.dtype) - 1.0) * 0.001
        position, velocity = move_car(position, velocity + (push + tf.cos(3 * position) * (-GRAVITY)))
        terminated = (position >= 0.5) & (velocity >= 0)
        return tf.stack([position, velocity], axis=1), -tf.ones_like(position), terminated

    def observe(self, physics):
        return tf.cast(physics, tf.float32)


class MountainCarContinuous(GraphEnv):
    """The same valley with a force a in [-1, 1] (float32 [N, 1], clipped). Physics (position, velocity).

        velocity += clip(a, -1, 1) 0.0015 - 0.0025 cos(3 position), then `move_car`.
    Terminated when position >= 0.45 and velocity >= 0; reward 100 on reaching it, minus
    0.1 a² every step with the *unclipped* a (as gymnasium); truncated at 999 steps. gymnasium
    stores this env's state as float32 after each step, so the physics is rounded to float32 too.
    """

    env_id = "MountainCarContinuous-v0"
    max_episode_steps = 999
    observation_space = gym.spaces.Box(_STATE_LOW, _STATE_HIGH, dtype=np.float32)
    action_space = gym.spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)

    def initial_physics(self, key, n):
        return initial_car(key, n, self.dtype)

    def dynamics(self, physics, action):
        position, velocity = tf.unstack(physics, axis=1)
        action = self._float(action)
        force = tf.clip_by_value(action, -1.0, 1.0)
        position, velocity = move_car(position, velocity + (force * 0.0015 - GRAVITY * tf.cos(3 * position)))
        terminated = (position >= 0.45) & (velocity >= 0)
        reward = tf.where(terminated, 100.0, 0.0) - tf.cast(tf.square(action) * 0.1, tf.float32)
        return round_to_float32(tf.stack([position, velocity], axis=1)), reward, terminated

    def observe(self, physics):
        return tf.cast(physics, tf.float32)
