"""Policies: Keras models whose outputs parameterise tensorflow_probability distributions.

Every policy offers the same small interface, used by the algorithms and by the exporter:
  distribution(obs)  -> tfd.Distribution over actions
  mode(obs)          -> the deterministic (greedy) action
  sample(obs, seed)  -> a sampled action, seed a stateless [2] int seed
  act(obs)           -> tf.function with a fixed input signature: one batched call per vector step
  variables          -> the trainable variables
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg import networks
from tfpg.errors import ConfigError

tfd = tfp.distributions


class CategoricalPolicy:
    """pi(a|s) = softmax(f_theta(s))_a for a Discrete action space."""

    kind = "categorical"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 hidden=(128,), seed: int = 0):
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ConfigError(f"the categorical policy needs a Discrete action space, but the env's is {action_space}; "
                              "use an env with discrete actions")
        self.observation_space = observation_space
        self.action_space = action_space
        # An MLP for flat observations, the Nature CNN (logits head) for stacked uint8 frames.
        self.model = networks.torso_for(observation_space, hidden, int(action_space.n), name="policy",
                                        output_scale=0.01)
        self.rng = tf.random.Generator.from_seed(seed)
        # Frames stay uint8 up to the model (it scales them); flat observations are float32.
        obs_dtype = tf.uint8 if networks.is_image_space(observation_space) else tf.float32
        self.obs_spec = tf.TensorSpec([None, *observation_space.shape], obs_dtype, name="observations")
        self.action_spec = tf.TensorSpec([None], tf.int32, name="actions")
        self.act = tf.function(self._act, input_signature=[self.obs_spec])
        # Calling the traced graph directly skips tf.function's per-call argument binding,
        # about half the cost of a small policy call on CPU.
        self._act_graph = self.act.get_concrete_function()
        self._mode_graph = tf.function(self.mode, input_signature=[self.obs_spec]).get_concrete_function()

    @property
    def variables(self):
        return self.model.trainable_variables

    def logits(self, obs):
        return self.model(tf.cast(obs, self.obs_spec.dtype))

    def distribution(self, obs) -> tfd.Categorical:
        return tfd.Categorical(logits=self.logits(obs))

    def mode(self, obs):
        return tf.argmax(self.logits(obs), axis=-1, output_type=tf.int32)

    def sample(self, obs, seed):
        return self.distribution(obs).sample(seed=seed)

    def _act(self, obs):
        return self.sample(obs, tf.cast(self.rng.make_seeds(1)[:, 0], tf.int32))

    def act_numpy(self, obs: np.ndarray) -> np.ndarray:
        """One batched policy call per vector step: numpy observations in, numpy actions out."""
        return self._act_graph(tf.convert_to_tensor(obs, self.obs_spec.dtype)).numpy()

    def greedy_numpy(self, obs: np.ndarray) -> np.ndarray:
        """The greedy action for a batch of numpy observations (used by greedy evaluation)."""
        return self._mode_graph(tf.convert_to_tensor(obs, self.obs_spec.dtype)).numpy()


def make_policy(observation_space, action_space, hidden, seed) -> CategoricalPolicy:
    return CategoricalPolicy(observation_space, action_space, hidden, seed)
