"""Baselines b(s) subtracted from returns: advantages = G - b. One small interface:

  values(obs)          -> b for each observation, from data seen *before* this batch (so the
                          baseline does not depend on the sample it weights and stays unbiased)
  fit(obs, returns)    -> dict of diagnostics, after the batch has been used
  state() / load(dict) -> plain arrays, for checkpoints (never pickles)
  trackables()         -> TensorFlow objects a checkpoint saves directly (the critic)
"""
from __future__ import annotations

import numpy as np


class NoBaseline:
    name = "none"
    learned = False

    def values(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(len(obs), dtype=np.float32)

    def fit(self, obs, returns) -> dict:
        return {}

    def state(self) -> dict:
        return {}

    def load(self, state: dict) -> None:
        pass

    def trackables(self) -> dict:
        return {}


class MeanBaseline(NoBaseline):
    """b = mean of every return seen so far (the book's vanilla-PG baseline)."""

    name = "mean"

    def __init__(self):
        self.total, self.count = 0.0, 0

    def values(self, obs):
        b = self.total / self.count if self.count else 0.0
        return np.full(len(obs), b, dtype=np.float32)

    def fit(self, obs, returns):
        self.total += float(np.sum(returns, dtype=np.float64))
        self.count += len(returns)
        return {}

    def state(self):
        return {"total": np.float64(self.total), "count": np.int64(self.count)}

    def load(self, state):
        self.total, self.count = float(state["total"]), int(state["count"])


class MovingBaseline(NoBaseline):
    """b = mean of the last `window` returns (the book's Pong script: 1,000,000 transitions).

    A ring buffer with a running sum: O(1) work per transition, whatever the window.
    """

    name = "moving"

    def __init__(self, window: int):
        self.ring = np.zeros(window, dtype=np.float64)
        self.pos, self.count, self.total = 0, 0, 0.0

    def values(self, obs):
        b = self.total / self.count if self.count else 0.0
        return np.full(len(obs), b, dtype=np.float32)

    def fit(self, obs, returns):
        returns = np.asarray(returns, dtype=np.float64)[-len(self.ring):]
        idx = (self.pos + np.arange(len(returns))) % len(self.ring)
        self.total += returns.sum() - self.ring[idx].sum()
        self.ring[idx] = returns
        self.pos = int((self.pos + len(returns)) % len(self.ring))
        self.count = min(self.count + len(returns), len(self.ring))
        if self.pos < len(returns):  # once per lap (O(1) amortised): drop accumulated rounding error
            self.total = float(self.ring.sum())
        return {}

    def state(self):
        return {"ring": self.ring, "pos": np.int64(self.pos), "count": np.int64(self.count),
                "total": np.float64(self.total)}

    def load(self, state):
        self.ring = np.array(state["ring"], dtype=np.float64)
        self.pos, self.count, self.total = int(state["pos"]), int(state["count"]), float(state["total"])


class LinearBaseline(NoBaseline):
    """V(s) = w.s + c, refitted by scikit-learn's LinearRegression on (states, returns) each batch."""

    name = "linear"
    learned = True

    def __init__(self, obs_dim: int):
        self.coef = np.zeros(obs_dim)
        self.intercept = 0.0

    def values(self, obs):
        obs = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
        return (obs @ self.coef + self.intercept).astype(np.float32)

    def fit(self, obs, returns):
        from sklearn.linear_model import LinearRegression

        obs = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
        before = self.values(obs)
        model = LinearRegression().fit(obs, np.asarray(returns, dtype=np.float64))
        self.coef, self.intercept = model.coef_.astype(np.float64), float(model.intercept_)
        return {"value_loss": float(np.mean((returns - before) ** 2))}

    def state(self):
        return {"coef": self.coef, "intercept": np.float64(self.intercept)}

    def load(self, state):
        self.coef, self.intercept = np.array(state["coef"], dtype=np.float64), float(state["intercept"])


class CriticBaseline(NoBaseline):
    """V_phi(s), a Keras network (an MLP on flat observations, the Nature CNN on frames) trained by its own
    compiled step on 0.5 * mean((V(s) - G)^2).

    `features` (a TF function of the observations, e.g. the policy's running normalisation)
    is applied before the network. With `normalize_targets` the network fits standardised targets
    and its output is scaled back, V(s) = mu_G + sigma_G * net(s), where mu_G and sigma_G^2 are the
    running mean and variance of every target fitted so far: the value's scale (returns of -1000 or
    of +1) no longer decides how many Adam steps the critic needs.
    """

    name = "critic"
    learned = True

    def __init__(self, observation_space, hidden, lr: float, epochs: int = 1, features=None, normalize_targets=False,
                 activation: str = "relu"):
        import keras
        import tensorflow as tf

        from tfpg.models.networks import is_image_space, torso_for
        from tfpg.models.normalization import ObservationNormalizer

        self.model = torso_for(observation_space, hidden, 1, name="critic", activation=activation)
        self.optimizer = keras.optimizers.Adam(learning_rate=lr)
        self.optimizer.build(self.model.trainable_variables)
        self.epochs = epochs
        features = features or (lambda obs: obs)
        # frames stay uint8 up to the network, which scales them (as the policy's)
        self.obs_dtype = np.uint8 if is_image_space(observation_space) else np.float32
        spec = tf.TensorSpec([None, *observation_space.shape], self.obs_dtype)

        @tf.function(input_signature=[spec])
        def predict(obs):
            return self.model(features(obs))[:, 0]

        @tf.function(input_signature=[spec, tf.TensorSpec([None], tf.float32)])
        def train_step(obs, returns):
            with tf.GradientTape() as tape:
                value_loss = 0.5 * tf.reduce_mean(tf.square(self.model(features(obs))[:, 0] - returns))
            variables = self.model.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(value_loss, variables), variables))
            return value_loss

        self._predict, self.train_step = predict, train_step
        self.target_stats = ObservationNormalizer(1) if normalize_targets else None

    def _scale(self) -> tuple[float, float]:
        """(mu_G, sigma_G) of the targets so far; (0, 1) without target normalisation."""
        if self.target_stats is None or self.target_stats.count == 0:
            return 0.0, 1.0
        stats = self.target_stats.state()
        return float(stats["mean"][0]), float(np.sqrt(stats["var"][0] + 1e-8))

    def values(self, obs):
        mean, std = self._scale()
        return mean + std * self._predict(np.asarray(obs, dtype=self.obs_dtype)).numpy()

    def fit(self, obs, returns):
        """Adam steps on 0.5 * mean((net(s) - (G - mu_G) / sigma_G)^2), the statistics first updated with this batch;
        value_loss is in the standardised units when the targets are normalised."""
        obs = np.asarray(obs, dtype=self.obs_dtype)
        if self.target_stats is not None:
            self.target_stats.update(np.asarray(returns, np.float64)[:, None])
        mean, std = self._scale()
        targets = ((np.asarray(returns, dtype=np.float64) - mean) / std).astype(np.float32)
        losses = [float(self.train_step(obs, targets)) for _ in range(self.epochs)]
        return {"value_loss": losses[0]}

    def state(self):
        if self.target_stats is None:
            return {}
        return {f"critic_targets/{k}": v for k, v in self.target_stats.state().items()}

    def load(self, state):
        if self.target_stats is not None:
            self.target_stats.load({k[len("critic_targets/"):]: v for k, v in state.items()
                                    if k.startswith("critic_targets/")})

    def trackables(self):
        # The network and its Adam slots, so a resumed critic continues exactly.
        return {"critic": self.model, "critic_optimizer": self.optimizer}


BASELINE_KINDS = ("none", "mean", "moving", "linear", "critic")


def make_baseline(kind: str, observation_space, *, window: int = 1_000_000, hidden=(64, 64), lr: float = 1e-3,
                  epochs: int = 1, features=None, normalize_targets: bool = False, activation: str = "relu"):
    if kind == "none":
        return NoBaseline()
    if kind == "mean":
        return MeanBaseline()
    if kind == "moving":
        return MovingBaseline(window)
    if kind == "linear":
        return LinearBaseline(int(np.prod(observation_space.shape)))
    if kind == "critic":
        return CriticBaseline(observation_space, hidden, lr, epochs, features, normalize_targets, activation)
    raise ValueError(f"unknown baseline {kind!r}")


def explained_variance(values: np.ndarray, returns: np.ndarray) -> float:
    """1 - Var(G - V) / Var(G): 1 is a perfect value function, 0 no better than a constant."""
    var = float(np.var(returns))
    return float("nan") if var == 0 else 1.0 - float(np.var(returns - values)) / var
