"""Pendulum-v1 as TensorFlow ops (gymnasium 1.4's `PendulumEnv`, g = 10)."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import tensorflow as tf

from tfpg.envs.graph.core import GraphEnv, uniform_rows

MAX_SPEED = 8.0
MAX_TORQUE = 2.0
DT = 0.05
GRAVITY = 10.0
MASS = 1.0
LENGTH = 1.0


def angle_normalize(theta: tf.Tensor) -> tf.Tensor:
    """theta mapped into [-pi, pi): ((theta + pi) mod 2 pi) - pi, mod with the sign of the divisor."""
    return tf.math.floormod(theta + math.pi, 2 * math.pi) - math.pi


class Pendulum(GraphEnv):
    """A pendulum swung up by a torque u in [-2, 2] (float32 [N, 1], clipped). Physics (theta, theta_dot).

        cost       = angle_normalize(theta)² + 0.1 theta_dot² + 0.001 u²      (of the state before the step)
        theta_dot' = clip(theta_dot + (3 g / (2 l) sin(theta) + 3 / (m l²) u) dt, -8, 8)
        theta'     = theta + theta_dot' dt
    Reward -cost; never terminated; truncated at 200 steps. Observation (cos theta, sin theta,
    theta_dot); theta itself is not wrapped. Initial physics theta ~ U(-pi, pi), theta_dot ~ U(-1, 1).
    """

    env_id = "Pendulum-v1"
    max_episode_steps = 200
    _obs_high = np.array([1.0, 1.0, MAX_SPEED], dtype=np.float32)
    observation_space = gym.spaces.Box(-_obs_high, _obs_high, dtype=np.float32)
    action_space = gym.spaces.Box(low=-MAX_TORQUE, high=MAX_TORQUE, shape=(1,), dtype=np.float32)

    def initial_physics(self, key, n):
        return uniform_rows(key, n, [-math.pi, -1.0], [math.pi, 1.0], self.dtype)

    def dynamics(self, physics, action):
        theta, theta_dot = tf.unstack(physics, axis=1)
        # gymnasium keeps the float32 action's terms in float32 (numpy scalar promotion); so do we,
        # so that the float64 mode reproduces its arithmetic
        torque = tf.clip_by_value(tf.reshape(tf.cast(action, tf.float32), [-1]), -MAX_TORQUE, MAX_TORQUE)
        torque_cost = tf.cast(0.001 * torque**2, self.dtype)
        torque_acc = tf.cast(3.0 / (MASS * LENGTH**2) * torque, self.dtype)
        cost = angle_normalize(theta) ** 2 + 0.1 * theta_dot**2 + torque_cost
        angular_acc = 3 * GRAVITY / (2 * LENGTH) * tf.sin(theta) + torque_acc
        theta_dot_next = tf.clip_by_value(theta_dot + angular_acc * DT, -MAX_SPEED, MAX_SPEED)
        theta_next = theta + theta_dot_next * DT
        terminated = tf.zeros_like(theta, dtype=tf.bool)
        return tf.stack([theta_next, theta_dot_next], axis=1), -cost, terminated

    def observe(self, physics):
        theta, theta_dot = tf.unstack(physics, axis=1)
        return tf.cast(tf.stack([tf.cos(theta), tf.sin(theta), theta_dot], axis=1), tf.float32)
