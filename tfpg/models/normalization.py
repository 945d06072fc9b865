"""Running normalisation: observations inside the policy graph, rewards by the scale of the return.

    x_norm = clip((x - mu) / sqrt(sigma^2 + eps), -10, 10)                 observations (`ObservationNormalizer`)
    r_norm = clip(r / sqrt(Var[R] + eps), -10, 10),  R_t = gamma R_{t-1} + r_t   rewards (`RewardNormalizer`)

mu and sigma^2 are the mean and (population) variance of everything fed so far, merged batch by batch
with Chan et al.'s parallel update (`RunningMoments`: exact, so the statistics equal numpy's mean/var
over all values fed). The observation statistics live in non-trainable tf.Variables: the policy's graph
reads them, the exporter tracks them, and inference on raw observations needs nothing else. The reward
statistics only shape what the learner sees; the policy and its export never read them.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


class RunningMoments:
    """Mean and population variance of every row fed to `update`, in float64 on the host (exact over long runs)."""

    def __init__(self, dim: int):
        self.mean, self.var, self.count = np.zeros(dim), np.ones(dim), 0

    def update(self, values: np.ndarray) -> None:
        """Merge the moments of `values` (n, dim) into the running ones (Chan et al.)."""
        x = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        n = len(x)
        if n == 0:
            return
        batch_mean, batch_var = x.mean(0), x.var(0)
        if self.count == 0:
            self.mean, self.var = batch_mean, batch_var
        else:
            total = self.count + n
            delta = batch_mean - self.mean
            m2 = self.var * self.count + batch_var * n + delta ** 2 * self.count * n / total
            self.mean, self.var = self.mean + delta * n / total, m2 / total
        self.count += n

    def state(self) -> dict:
        return {"mean": self.mean, "var": self.var, "count": np.int64(self.count)}

    def load(self, state: dict) -> None:
        self.mean, self.var = np.array(state["mean"], np.float64), np.array(state["var"], np.float64)
        self.count = int(state["count"])


class ObservationNormalizer:
    def __init__(self, obs_dim: int, clip: float = 10.0, eps: float = 1e-8):
        self.clip, self.eps = clip, eps
        self.moments = RunningMoments(obs_dim)
        # The float32 variables mirror the host-side float64 moments.
        self.mean = tf.Variable(tf.zeros([obs_dim]), trainable=False, name="obs_mean")
        self.var = tf.Variable(tf.ones([obs_dim]), trainable=False, name="obs_var")

    @property
    def count(self) -> int:
        return self.moments.count

    def update(self, observations: np.ndarray) -> None:
        """Merge the moments of `observations` (N, obs_dim) into the running statistics."""
        self.moments.update(observations)
        self._mirror()

    def _mirror(self) -> None:
        self.mean.assign(self.moments.mean.astype(np.float32))
        self.var.assign(self.moments.var.astype(np.float32))

    def __call__(self, obs):
        return tf.clip_by_value((obs - self.mean) * tf.math.rsqrt(self.var + self.eps), -self.clip, self.clip)

    def state(self) -> dict:
        return self.moments.state()

    def load(self, state: dict) -> None:
        self.moments.load(state)
        self._mirror()


class RewardNormalizer:
    """Rewards divided by the running standard deviation of the discounted return R (and clipped).

    Per env, R_t = gamma R_{t-1} + r_t over the live rows of each rollout, R = 0 after an episode's end; every
    R_t of a rollout joins the running variance, then the rollout's rewards are scaled by 1 / sqrt(Var[R] + eps).
    Only the scale changes, not the sign or the origin: a reward of -1 per step stays a cost per step. Why: the
    critic's targets (and so its step sizes and initial error) become O(1) whatever the env pays -- returns of
    -1000 (Pendulum) and of +1 are fitted alike -- and the value loss no longer swamps what it is added to.
    R restarts at 0 when the envs are re-seeded (`reset`, at a checkpoint), as their episodes do.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8):
        self.gamma, self.clip, self.eps = gamma, clip, eps
        self.moments = RunningMoments(1)
        self.returns = np.zeros(num_envs)

    def reset(self, columns: slice = slice(None)) -> None:
        """R = 0 for the envs in `columns` (all by default): their episodes were cut (re-seeded envs)."""
        self.returns[columns] = 0.0

    def __call__(self, rewards: np.ndarray, ended: np.ndarray, live: np.ndarray) -> np.ndarray:
        """(T, N) rewards, episode ends and live rows -> the (T, N) scaled rewards (0 where not live)."""
        discounted = np.zeros(rewards.shape)
        for t in range(len(rewards)):
            self.returns = np.where(live[t], self.gamma * self.returns + rewards[t], self.returns)
            discounted[t] = self.returns
            self.returns = np.where(ended[t] & live[t], 0.0, self.returns)
        self.moments.update(discounted[live][:, None])
        return np.where(live, np.clip(rewards * self.scale, -self.clip, self.clip), 0.0).astype(np.float32)

    @property
    def scale(self) -> float:
        """1 / sqrt(Var[R] + eps), what the last rewards were multiplied by (before the clip)."""
        return float(1.0 / np.sqrt(self.moments.var[0] + self.eps))

    def state(self) -> dict:
        # The trainer restarts the envs right after a checkpoint and after a resume, which zeroes R (`reset`);
        # R is saved anyway so that a normaliser restores exactly wherever it was saved.
        return {**self.moments.state(), "returns": self.returns.copy()}

    def load(self, state: dict) -> None:
        self.moments.load(state)
        self.returns = np.array(state["returns"], np.float64)
