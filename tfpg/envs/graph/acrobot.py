"""Acrobot-v1 as TensorFlow ops (gymnasium 1.4's `AcrobotEnv`, "book" dynamics, RK4)."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import tensorflow as tf

from tfpg.envs.graph.core import GraphEnv, round_to_float32, uniform_rows

DT = 0.2                      # seconds per step, one RK4 step
LINK_LENGTH_1 = 1.0
LINK_MASS_1 = 1.0
LINK_MASS_2 = 1.0
LINK_COM_1 = 0.5              # position of each link's centre of mass
LINK_COM_2 = 0.5
LINK_MOI = 1.0                # moment of inertia of each link
GRAVITY = 9.8
MAX_VEL_1 = 4 * math.pi
MAX_VEL_2 = 9 * math.pi


def wrap_angle(x: tf.Tensor) -> tf.Tensor:
    """x shifted by whole turns into [-pi, pi], as gymnasium's `wrap` loops: subtract 2 pi while
    x > pi, add 2 pi while x < -pi (so ±pi themselves are kept, and one turn is exactly x ∓ 2 pi)."""
    turn = 2 * math.pi
    turns_down = tf.math.ceil((x - math.pi) / turn)
    turns_up = tf.math.ceil((-math.pi - x) / turn)
    return tf.where(x > math.pi, x - turn * turns_down, tf.where(x < -math.pi, x + turn * turns_up, x))


def derivatives(s: tf.Tensor, torque: tf.Tensor) -> tf.Tensor:
    """d/dt (theta1, theta2, dtheta1, dtheta2) for torque `a` on the second joint ([N, 4] -> [N, 4]).

    d1 = m1 lc1² + m2 (l1² + lc2² + 2 l1 lc2 cos th2) + I1 + I2,   d2 = m2 (lc2² + l1 lc2 cos th2) + I2
    phi2 = m2 lc2 g cos(th1 + th2 - pi/2)
    phi1 = -m2 l1 lc2 dth2² sin th2 - 2 m2 l1 lc2 dth2 dth1 sin th2 + (m1 lc1 + m2 l1) g cos(th1 - pi/2) + phi2
    ddth2 = (a + d2/d1 phi1 - m2 l1 lc2 dth1² sin th2 - phi2) / (m2 lc2² + I2 - d2²/d1)
    ddth1 = -(d2 ddth2 + phi1) / d1
    """
    m1, m2, l1, lc1, lc2, i1, i2 = LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1, LINK_COM_1, LINK_COM_2, LINK_MOI, LINK_MOI
    theta1, theta2, dtheta1, dtheta2 = tf.unstack(s, axis=1)
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * tf.cos(theta2)) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * tf.cos(theta2)) + i2
    phi2 = m2 * lc2 * GRAVITY * tf.cos(theta1 + theta2 - math.pi / 2.0)
    phi1 = (-m2 * l1 * lc2 * dtheta2**2 * tf.sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * tf.sin(theta2)
            + (m1 * lc1 + m2 * l1) * GRAVITY * tf.cos(theta1 - math.pi / 2)
            + phi2)
    ddtheta2 = (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * tf.sin(theta2) - phi2) / (
        m2 * lc2**2 + i2 - d2**2 / d1)
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return tf.stack([dtheta1, dtheta2, ddtheta1, ddtheta2], axis=1)


def rk4_step(s: tf.Tensor, torque: tf.Tensor, dt: float) -> tf.Tensor:
    """One classical Runge-Kutta step: s + dt/6 (k1 + 2 k2 + 2 k3 + k4), torque held constant."""
    half = dt / 2.0
    k1 = derivatives(s, torque)
    k2 = derivatives(s + half * k1, torque)
    k3 = derivatives(s + half * k2, torque)
    k4 = derivatives(s + dt * k3, torque)
    return s + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


class Acrobot(GraphEnv):
    """Two links, torque -1, 0, +1 (actions 0, 1, 2) on the middle joint. Physics (th1, th2, dth1, dth2).

    One RK4 step of 0.2 s of `derivatives`, then th1, th2 wrapped into [-pi, pi] and dth1, dth2
    clipped to ±4 pi, ±9 pi. Terminated when the tip is a link length above the pivot,
    -cos(th1) - cos(th1 + th2) > 1; reward -1 per step, 0 on the terminating one; truncated at
    500 steps. Observation (cos th1, sin th1, cos th2, sin th2, dth1, dth2). Initial physics
    ~ U(-0.1, 0.1)^4, rounded to float32 as gymnasium stores it.
    """

    env_id = "Acrobot-v1"
    max_episode_steps = 500
    _obs_high = np.array([1.0, 1.0, 1.0, 1.0, MAX_VEL_1, MAX_VEL_2], dtype=np.float32)
    observation_space = gym.spaces.Box(-_obs_high, _obs_high, dtype=np.float32)
    action_space = gym.spaces.Discrete(3)

    def initial_physics(self, key, n):
        return round_to_float32(uniform_rows(key, n, [-0.1] * 4, [0.1] * 4, self.dtype))

    def dynamics(self, physics, action):
        torque = tf.cast(action, self.dtype) - 1.0
        s = rk4_step(physics, torque, DT)
        theta1, theta2, dtheta1, dtheta2 = tf.unstack(s, axis=1)
        s = tf.stack([wrap_angle(theta1), wrap_angle(theta2),
                      tf.clip_by_value(dtheta1, -MAX_VEL_1, MAX_VEL_1),
                      tf.clip_by_value(dtheta2, -MAX_VEL_2, MAX_VEL_2)], axis=1)
        terminated = -tf.cos(s[:, 0]) - tf.cos(s[:, 1] + s[:, 0]) > 1.0
        reward = tf.where(terminated, 0.0, -1.0)
        return s, reward, terminated

    def observe(self, physics):
        theta1, theta2, dtheta1, dtheta2 = tf.unstack(physics, axis=1)
        obs = tf.stack([tf.cos(theta1), tf.sin(theta1), tf.cos(theta2), tf.sin(theta2), dtheta1, dtheta2], axis=1)
        return tf.cast(obs, tf.float32)
