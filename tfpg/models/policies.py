"""Policies: Keras models whose outputs parameterise tensorflow_probability distributions.

Every policy offers the same small interface, used by the algorithms and by the exporter:
  distribution_params(obs)   -> dict of tensors: {"logits"} or {"mean", "log_std"}
  distribution_from_params(p)-> tfd.Distribution over actions (so KL(before || after) can be
                                taken between two parameter sets of the same policy)
  distribution(obs)          -> distribution_from_params(distribution_params(obs))
  mode(obs)                  -> the deterministic (greedy) action, inside the env's bounds
  sample(obs, seed)          -> a sampled action, seed a stateless [2] int seed; its log-prob is the
                                one the loss uses (for the Gaussian: not yet clipped)
  clip_action(a)             -> the action as the env receives it (TF); env_action: same in numpy
  act(obs)                   -> tf.function with a fixed input signature: one batched call per vector step
  variables                  -> the trainable variables
  trackables                 -> everything the SavedModel must carry (model, log-std, obs statistics)

With `normalize_obs` the network sees (obs - mu) / sigma clipped to +-10, mu and sigma running
statistics held inside the policy (see `tfpg.models.normalization`), so exports take raw observations.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.core.errors import ConfigError
from tfpg.models import networks
from tfpg.models.normalization import ObservationNormalizer

tfd = tfp.distributions


class MLPPolicy:
    """What the categorical and Gaussian policies share: observation checks, the network (an MLP, or
    the Nature CNN for stacked frames), normalisation, act()."""

    kind = ""
    needs_space: type = gym.spaces.Space
    action_dtype = tf.float32
    action_shape: tuple = ()

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, hidden=(128,), seed: int = 0,
                 normalize_obs: bool = False, activation: str = "relu"):
        if not isinstance(action_space, self.needs_space):
            other = {"categorical": "gaussian", "gaussian": "categorical"}[self.kind]
            raise ConfigError(f"the {self.kind} policy needs a {self.needs_space.__name__} action space, but the env's "
                              f"is {action_space}; use --policy auto or {other}")
        self.observation_space = observation_space
        self.action_space = action_space
        self.images = networks.is_image_space(observation_space)
        # Running statistics are for flat observations; frames are scaled to [0, 1] inside the network instead.
        self.normalizer = ObservationNormalizer(int(observation_space.shape[0])) \
            if normalize_obs and not self.images else None
        # An MLP for flat observations, the Nature CNN for stacked uint8 frames (ConfigError otherwise).
        self.model = networks.torso_for(observation_space, hidden, self.output_dim(action_space), name="policy",
                                        output_scale=0.01, activation=activation)
        self.rng = tf.random.Generator.from_seed(seed)
        # Frames stay uint8 up to the model (it scales them); flat observations are float32.
        obs_dtype = tf.uint8 if self.images else tf.float32
        self.obs_spec = tf.TensorSpec([None, *observation_space.shape], obs_dtype, name="observations")
        self.action_spec = tf.TensorSpec([None, *self.action_shape], self.action_dtype, name="actions")
        self.act = tf.function(self._act, input_signature=[self.obs_spec])
        # Calling the traced graphs directly skips tf.function's per-call argument binding,
        # about half the cost of a small policy call on CPU.
        self._act_graph = self.act.get_concrete_function()
        self._mode_graph = tf.function(self.mode, input_signature=[self.obs_spec]).get_concrete_function()

    def output_dim(self, action_space) -> int:
        raise NotImplementedError

    @property
    def variables(self):
        return self.model.trainable_variables

    @property
    def trackables(self) -> dict:
        extra = {} if self.normalizer is None else {"obs_mean": self.normalizer.mean, "obs_var": self.normalizer.var}
        return {"model": self.model, **extra}

    def features(self, obs):
        """What the network sees: raw observations (frames: uint8), or running-normalised ones."""
        if self.images:
            return tf.cast(obs, tf.uint8)
        obs = tf.cast(obs, tf.float32)
        return obs if self.normalizer is None else self.normalizer(obs)

    def distribution(self, obs) -> tfd.Distribution:
        return self.distribution_from_params(self.distribution_params(obs))

    def sample(self, obs, seed):
        return self.distribution(obs).sample(seed=seed)

    def clip_action(self, actions):
        return actions

    def env_action(self, actions: np.ndarray) -> np.ndarray:
        return actions

    def _act(self, obs):
        return self.sample(obs, tf.cast(self.rng.make_seeds(1)[:, 0], tf.int32))

    def act_numpy(self, obs: np.ndarray) -> np.ndarray:
        """One batched policy call per vector step: numpy observations in, numpy actions out."""
        return self._act_graph(tf.convert_to_tensor(obs, self.obs_spec.dtype)).numpy()

    def greedy_numpy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions, ready for env.step (evaluation)."""
        return self._mode_graph(tf.convert_to_tensor(obs, self.obs_spec.dtype)).numpy()

    def diagnostics(self) -> dict:
        return {}


class CategoricalPolicy(MLPPolicy):
    """pi(a|s) = softmax(f_theta(s))_a for a Discrete action space."""

    kind = "categorical"
    needs_space = gym.spaces.Discrete
    action_dtype = tf.int32

    def output_dim(self, action_space) -> int:
        return int(action_space.n)

    def logits(self, obs):
        return self.model(self.features(obs))

    def distribution_params(self, obs) -> dict:
        return {"logits": self.logits(obs)}

    def distribution_from_params(self, params) -> tfd.Categorical:
        return tfd.Categorical(logits=params["logits"])

    def mode(self, obs):
        return tf.argmax(self.logits(obs), axis=-1, output_type=tf.int32)


class GaussianPolicy(MLPPolicy):
    """pi(a|s) = N(a; mu_theta(s), diag(sigma^2)) for a Box action space, sigma = exp(log_std).

    log_std is a free trainable vector (state-independent, initialised to `log_std_init`, by
    default 0, i.e. sigma = 1):

        log pi(a|s) = sum_d [ -(a_d - mu_d)^2 / (2 sigma_d^2) - log sigma_d - 1/2 log 2 pi ]
        H(pi(.|s))  = sum_d [ 1/2 log(2 pi e) + log sigma_d ]

    Samples a = mu + sigma * eps are stored and scored unclipped (the distribution's own
    support); the env receives them clipped into its bounds. Clipping rather than tanh squashing
    keeps the log-prob and entropy closed-form and the mean's gradient alive at the bounds; the
    cost is a small mismatch between the scored and the executed action near the bounds.
    """

    kind = "gaussian"
    needs_space = gym.spaces.Box

    def __init__(self, observation_space, action_space, hidden=(64, 64), seed: int = 0,
                 normalize_obs: bool = False, activation: str = "relu", log_std_init: float = 0.0):
        if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) != 1:
            raise ConfigError(f"the gaussian policy needs a flat Box action space, got {action_space}")
        if isinstance(action_space, gym.spaces.Box):  # else the base class raises the one-line error
            self.action_shape = tuple(action_space.shape)
            self.log_std = tf.Variable(tf.fill(self.action_shape, float(log_std_init)), name="log_std")
            self.low = tf.constant(action_space.low, tf.float32)
            self.high = tf.constant(action_space.high, tf.float32)
        super().__init__(observation_space, action_space, hidden, seed, normalize_obs, activation)

    def output_dim(self, action_space) -> int:
        return int(action_space.shape[0])

    @property
    def variables(self):
        return [*self.model.trainable_variables, self.log_std]

    @property
    def trackables(self) -> dict:
        return {**super().trackables, "log_std": self.log_std}

    def mean(self, obs):
        return self.model(self.features(obs))

    def distribution_params(self, obs) -> dict:
        mean = self.mean(obs)
        return {"mean": mean, "log_std": tf.broadcast_to(self.log_std, tf.shape(mean))}

    def distribution_from_params(self, params) -> tfd.MultivariateNormalDiag:
        return tfd.MultivariateNormalDiag(loc=params["mean"], scale_diag=tf.exp(params["log_std"]))

    def mode(self, obs):
        return self.clip_action(self.mean(obs))

    def clip_action(self, actions):
        return tf.clip_by_value(actions, self.low, self.high)

    def env_action(self, actions: np.ndarray) -> np.ndarray:
        return np.clip(actions, self.action_space.low, self.action_space.high)

    def cap_log_std(self, max_log_std: float) -> None:
        """Project the log-std onto log_std_d <= max_log_std (a ceiling on sigma; below it, it is trained)."""
        self.log_std.assign(tf.minimum(self.log_std, max_log_std))

    def diagnostics(self) -> dict:
        return {f"policy/std_{d}": float(s) for d, s in enumerate(np.exp(self.log_std.numpy()))}


POLICIES = {"categorical": CategoricalPolicy, "gaussian": GaussianPolicy}
POLICY_KINDS = ("auto", *POLICIES)


def policy_kind(requested: str, action_space: gym.Space) -> str:
    """Resolve --policy: auto picks categorical for Discrete and gaussian for Box actions;
    an explicit kind must fit the space (ConfigError otherwise)."""
    if requested == "auto":
        for kind, cls in POLICIES.items():
            if isinstance(action_space, cls.needs_space):
                return kind
        raise ConfigError(f"no policy for the action space {action_space}; tfpg handles Discrete and Box")
    needed = POLICIES[requested].needs_space
    if not isinstance(action_space, needed):
        raise ConfigError(f"--policy {requested} needs a {needed.__name__} action space, but the env has "
                          f"{action_space}; use --policy auto")
    return requested


def _policy_variables(policy) -> list:
    """Every variable the policy's graph reads (weights, log-std, obs statistics), from its trackables."""
    return [v for t in policy.trackables.values() for v in (t.weights if hasattr(t, "weights") else [t])]


def snapshot_variables(policy) -> list[np.ndarray]:
    """Copies of the policy's variables (for --export-best), for any policy with `trackables`."""
    return [v.numpy().copy() for v in _policy_variables(policy)]


def restore_variables(policy, values: list[np.ndarray]) -> None:
    for v, value in zip(_policy_variables(policy), values, strict=True):
        v.assign(value)


def make_policy(kind: str, observation_space, action_space, hidden, seed, normalize_obs: bool = False,
                activation: str = "relu", log_std_init: float = 0.0) -> MLPPolicy:
    """`kind` is categorical or gaussian (resolve "auto" with `policy_kind` first)."""
    extra = {"log_std_init": log_std_init} if kind == "gaussian" else {}
    return POLICIES[kind](observation_space, action_space, hidden, seed, normalize_obs, activation, **extra)
