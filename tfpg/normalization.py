"""Running observation normalisation that travels inside the policy graph (and so the SavedModel).

    x_norm = clip((x - mu) / sqrt(sigma^2 + eps), -10, 10)

mu and sigma^2 are the mean and (population) variance of every observation collected so far,
merged batch by batch with Chan et al.'s parallel update (exact, so the statistics equal numpy's
mean/var over all observations fed). They live in non-trainable tf.Variables: the policy's graph
reads them, the exporter tracks them, and inference on raw observations needs nothing else.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


class ObservationNormalizer:
    def __init__(self, obs_dim: int, clip: float = 10.0, eps: float = 1e-8):
        self.clip, self.eps = clip, eps
        # Host-side float64 moments keep long runs exact; the float32 variables mirror them.
        self._mean = np.zeros(obs_dim)
        self._var = np.ones(obs_dim)
        self.count = 0
        self.mean = tf.Variable(tf.zeros([obs_dim]), trainable=False, name="obs_mean")
        self.var = tf.Variable(tf.ones([obs_dim]), trainable=False, name="obs_var")

    def update(self, observations: np.ndarray) -> None:
        """Merge the moments of `observations` (N, obs_dim) into the running statistics."""
        x = np.asarray(observations, dtype=np.float64).reshape(len(observations), -1)
        n = len(x)
        if n == 0:
            return
        batch_mean, batch_var = x.mean(0), x.var(0)
        if self.count == 0:
            self._mean, self._var = batch_mean, batch_var
        else:
            total = self.count + n
            delta = batch_mean - self._mean
            m2 = self._var * self.count + batch_var * n + delta ** 2 * self.count * n / total
            self._mean, self._var = self._mean + delta * n / total, m2 / total
        self.count += n
        self.mean.assign(self._mean.astype(np.float32))
        self.var.assign(self._var.astype(np.float32))

    def __call__(self, obs):
        return tf.clip_by_value((obs - self.mean) * tf.math.rsqrt(self.var + self.eps), -self.clip, self.clip)

    def state(self) -> dict:
        return {"mean": self._mean, "var": self._var, "count": np.int64(self.count)}

    def load(self, state: dict) -> None:
        self._mean, self._var = np.array(state["mean"], np.float64), np.array(state["var"], np.float64)
        self.count = int(state["count"])
        self.mean.assign(self._mean.astype(np.float32))
        self.var.assign(self._var.astype(np.float32))
