"""CartPole-v1 as TensorFlow ops (gymnasium 1.4's `CartPoleEnv`, Euler integrator)."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import tensorflow as tf

from tfpg.envs.graph.core import GraphEnv, uniform_rows

GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_CART + MASS_POLE
HALF_POLE_LENGTH = 0.5
POLE_MASS_LENGTH = MASS_POLE * HALF_POLE_LENGTH
FORCE_MAG = 10.0
TAU = 0.02                                   # seconds per step
THETA_THRESHOLD = 12 * 2 * math.pi / 360     # 12 degrees
X_THRESHOLD = 2.4


class CartPole(GraphEnv):
    """A pole hinged on a cart; push left (0) or right (1) with 10 N. Physics (x, x_dot, theta, theta_dot).

    With F = ±10, M = m_c + m_p, l = half pole length:
        temp     = (F + m_p l theta_dot² sin(theta)) / M
        theta_dd = (g sin(theta) - cos(theta) temp) / (l (4/3 - m_p cos²(theta) / M))
        x_dd     = temp - m_p l theta_dd cos(theta) / M
    then one explicit Euler step of tau = 0.02 s on (x, x_dot, theta, theta_dot), each from the
    old values. Terminated when |x| > 2.4 or |theta| > 12°; reward +1 on every step, the
    terminating one included; truncated at 500 steps. Initial physics ~ U(-0.05, 0.05)^4.
    """

    env_id = "CartPole-v1"
    max_episode_steps = 500
    _obs_high = np.array([X_THRESHOLD * 2, np.inf, THETA_THRESHOLD * 2, np.inf], dtype=np.float32)
    observation_space = gym.spaces.Box(-_obs_high, _obs_high, dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def initial_physics(self, key, n):
        return uniform_rows(key, n, [-0.05] * 4, [0.05] * 4, self.dtype)

    def dynamics(self, physics, action):
        x, x_dot, theta, theta_dot = tf.unstack(physics, axis=1)
        force = tf.where(tf.equal(action, 1), FORCE_MAG, -FORCE_MAG)
        force = tf.cast(force, self.dtype)
        cos_theta, sin_theta = tf.cos(theta), tf.sin(theta)
        temp = (force + POLE_MASS_LENGTH * tf.square(theta_dot) * sin_theta) / TOTAL_MASS
        theta_acc = (GRAVITY * sin_theta - cos_theta * temp) / (
            HALF_POLE_LENGTH * (4.0 / 3.0 - MASS_POLE * tf.square(cos_theta) / TOTAL_MASS))
        x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos_theta / TOTAL_MASS
        x_next = x + TAU * x_dot
        x_dot_next = x_dot + TAU * x_acc
        theta_next = theta + TAU * theta_dot
        theta_dot_next = theta_dot + TAU * theta_acc
        terminated = (tf.abs(x_next) > X_THRESHOLD) | (tf.abs(theta_next) > THETA_THRESHOLD)
        reward = tf.ones_like(x_next)
        return tf.stack([x_next, x_dot_next, theta_next, theta_dot_next], axis=1), reward, terminated

    def observe(self, physics):
        return tf.cast(physics, tf.float32)
