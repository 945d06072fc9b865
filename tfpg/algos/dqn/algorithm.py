"""DQN (Mnih et al., Nature 2015): Q-learning with experience replay and a target network.

Act epsilon-greedily with Q_theta, store every real transition (s, a, r, s', terminated) in a
replay buffer, and every `train_freq` vector steps take `gradient_steps` steps on uniformly
sampled mini-batches of

    y_j    = r_j + gamma * (1 - terminated_j) * max_a' Q_target(s'_j, a')          (no gradient)
    loss   = mean_j L(Q_theta(s_j, a_j) - y_j),   L(d) = d^2  or  Huber(d) = { d^2/2 if |d| <= 1, |d| - 1/2 }

Double DQN (van Hasselt et al. 2016) picks the next action with the online network and values it
with the target network: y_j = r_j + gamma (1 - terminated_j) Q_target(s'_j, argmax_a' Q_theta(s'_j, a')).

Every `target_sync` applied (finite) gradient steps the target network moves towards the online one,
theta_target <- tau * theta + (1 - tau) * theta_target (tau = 1: overwrite, as in the paper).

Only termination stops the bootstrap: after a time-limit truncation s' is the episode's true final
observation and still has a value.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from tfpg.algos.base import Algorithm, Iteration
from tfpg.algos.capabilities import Distributable
from tfpg.algos.dqn.config import DQNConfig
from tfpg.algos.dqn.presets import PRESETS
from tfpg.core.checkpoint import rng_state_from_array, rng_state_to_array
from tfpg.envs.stepping import VecStepper
from tfpg.experience.collectors import TransitionCollector
from tfpg.experience.replay import PixelReplayBuffer, ReplayBuffer
from tfpg.maths.updates import apply_if_finite
from tfpg.models import networks


class QPolicy:
    """The greedy policy of a Q-network, a(s) = argmax_a Q(s, a), with its target network.

    Offers what the exporter and evaluation need: `model`, `observation_space`, `mode(obs)`,
    `q_values(obs)`, `trackables`, and `greedy_numpy` (one compiled call per batch of numpy
    observations). The network is the Nature CNN for stacked uint8 frames, else an MLP.
    """

    kind = "q_greedy"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, hidden):
        self.observation_space = observation_space
        self.action_space = action_space
        self.num_actions = int(action_space.n)
        self.model = networks.torso_for(observation_space, hidden, self.num_actions, name="q")
        # Same architecture, same starting weights; from then on it changes only at syncs.
        self.target_model = networks.torso_for(observation_space, hidden, self.num_actions, name="q_target")
        self.target_model.set_weights(self.model.get_weights())
        # What the model takes: raw uint8 frames for the CNN (it scales them itself), else float32.
        self.model_dtype = tf.uint8 if networks.is_image_space(observation_space) else tf.float32
        self.obs_spec = tf.TensorSpec([None, *observation_space.shape], tf.as_dtype(observation_space.dtype),
                                      name="observations")
        self._greedy_graph = tf.function(self.mode, input_signature=[self.obs_spec]).get_concrete_function()

    @property
    def variables(self):
        return self.model.trainable_variables

    @property
    def trackables(self) -> dict:
        """What the exported SavedModel must carry."""
        return {"model": self.model}

    def q_values(self, obs):
        return self.model(tf.cast(obs, self.model_dtype))

    def target_q_values(self, obs):
        return self.target_model(tf.cast(obs, self.model_dtype))

    def mode(self, obs):
        return tf.argmax(self.q_values(obs), axis=-1, output_type=tf.int32)

    def greedy_numpy(self, obs: np.ndarray) -> np.ndarray:
        return self._greedy_graph(tf.convert_to_tensor(obs, self.obs_spec.dtype)).numpy()


def td_targets(rewards, terminated, next_q_target, gamma: float, next_q_online=None):
    """y = r + gamma * (1 - terminated) * Q_target(s', a*), with no gradient through it.

    a* = argmax_a' Q_target(s', a') (DQN), or argmax_a' Q_online(s', a') when `next_q_online`
    is given (Double DQN). `terminated` only: a truncated transition still bootstraps.
    """
    next_q_target = tf.convert_to_tensor(next_q_target, tf.float32)
    if next_q_online is None:
        next_value = tf.reduce_max(next_q_target, axis=-1)
    else:
        best = tf.argmax(next_q_online, axis=-1, output_type=tf.int32)
        next_value = tf.gather(next_q_target, best, axis=-1, batch_dims=1)
    not_terminal = 1.0 - tf.cast(terminated, tf.float32)
    return tf.stop_gradient(tf.cast(rewards, tf.float32) + gamma * not_terminal * next_value)


def td_loss(td_errors, kind: str):
    """mean L(d): squared error, or Huber with threshold 1 (quadratic inside, linear outside)."""
    if kind == "huber":
        abs_d = tf.abs(td_errors)
        return tf.reduce_mean(tf.where(abs_d <= 1.0, 0.5 * tf.square(td_errors), abs_d - 0.5))
    return tf.reduce_mean(tf.square(td_errors))


def sync_target(target_variables, online_variables, tau: float) -> None:
    """theta_target <- tau * theta + (1 - tau) * theta_target; tau = 1 copies exactly."""
    for target, online in zip(target_variables, online_variables):
        target.assign(online if tau == 1.0 else tau * online + (1.0 - tau) * target)


def epsilon(step, start: float, end: float, decay_steps: int, schedule: str = "linear") -> float:
    """Exploration rate after `step` env steps: start at step 0, end from `decay_steps` on.

    linear:      start + (end - start) * t / decay_steps
    exponential: start * (end / start) ** (t / decay_steps)   (geometric; needs start, end > 0)
    """
    frac = min(max(step, 0) / decay_steps, 1.0)
    if frac >= 1.0:
        return float(end)
    if schedule == "exponential":
        return float(start * (end / start) ** frac)
    return float(start + (end - start) * frac)


def worker_epsilon(base: float, alpha: float, index: int, workers: int) -> float:
    """epsilon_i = base^(1 + alpha * i / (N - 1)) for worker i of N (Horgan et al. 2018, Ape-X); base for N = 1."""
    return float(base ** (1.0 + alpha * index / max(1, workers - 1)))


class DQNUpdate:
    """The compiled update: `gradient_steps` TD steps and their target syncs in one graph call.

    Inputs are stacked batches, shape (gradient_steps, batch, ...), so one call runs them all.
    """

    def __init__(self, policy: QPolicy, optimizer, gamma: float, loss: str, double: bool,
                 grad_clip: float, target_sync: int, tau: float):
        self.policy = policy
        self.optimizer = optimizer
        self.gradient_steps_done = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.target_syncs = tf.Variable(0, dtype=tf.int64, trainable=False)
        online, target = policy.model.weights, policy.target_model.weights
        obs = tf.TensorSpec([None, None, *policy.obs_spec.shape[1:]], policy.obs_spec.dtype)
        variables = policy.variables

        def step(observations, actions, rewards, next_observations, terminated):
            next_q_target = policy.target_q_values(next_observations)
            next_q_online = policy.q_values(next_observations) if double else None
            targets = td_targets(rewards, terminated, next_q_target, gamma, next_q_online)
            with tf.GradientTape() as tape:
                q = policy.q_values(observations)
                q_taken = tf.gather(q, actions, axis=-1, batch_dims=1)
                loss_value = td_loss(q_taken - targets, loss)
            # A NaN/inf step would destroy the weights and Adam's moments: skip it instead.
            finite = apply_if_finite(optimizer, loss_value, tape.gradient(loss_value, variables), variables, grad_clip)
            # Only applied steps count towards a sync: a skipped step changed nothing to copy.
            if finite:
                self.gradient_steps_done.assign_add(1)
                if self.gradient_steps_done % target_sync == 0:
                    sync_target(target, online, tau)
                    self.target_syncs.assign_add(1)
            return loss_value, tf.reduce_mean(tf.reduce_max(q, axis=-1)), finite

        def stacked(dtype):   # (gradient_steps, batch)
            return tf.TensorSpec([None, None], dtype)

        # XLA fuses the small ops of a small network's gradient steps: several times faster per
        # step than the plain graph on CPU when one call runs many steps. Not for the CNN: XLA's CPU
        # convolutions (and their gradients) are far slower than TensorFlow's oneDNN kernels.
        jit = not networks.is_image_space(policy.observation_space)

        @tf.function(jit_compile=jit, input_signature=[obs, stacked(tf.int32), stacked(tf.float32), obs,
                                                        stacked(tf.bool)])
        def update(observations, actions, rewards, next_observations, terminated):
            steps = tf.shape(rewards)[0]
            loss_sum, q_sum, skipped = tf.constant(0.0), tf.constant(0.0), tf.constant(0)
            for g in tf.range(steps):
                loss_value, q_mean, finite = step(observations[g], actions[g], rewards[g], next_observations[g],
                                                  terminated[g])
                loss_sum += loss_value
                q_sum += q_mean
                skipped += 1 - tf.cast(finite, tf.int32)
            n = tf.cast(steps, tf.float32)
            return {"td_loss": loss_sum / n, "q_mean": q_sum / n, "skipped": skipped}

        self._graph = update.get_concrete_function()

    def __call__(self, batch) -> dict:
        """One update on a TransitionBatch of shape (gradient_steps, batch_size, ...)."""
        return self._graph(tf.convert_to_tensor(batch.observations), tf.convert_to_tensor(batch.actions, tf.int32),
                           tf.convert_to_tensor(batch.rewards), tf.convert_to_tensor(batch.next_observations),
                           tf.convert_to_tensor(batch.terminated))


def epsilon_greedy(greedy: Callable[[np.ndarray], np.ndarray], observations: np.ndarray, eps: float,
                   num_actions: int, rng: np.random.Generator) -> np.ndarray:
    """Per env: a uniformly random action with probability eps, else the greedy one (one batched call)."""
    n = len(observations)
    random_actions = rng.integers(0, num_actions, size=n)
    if eps >= 1.0:
        return random_actions    # no Q-network call needed
    explore = rng.random(n) < eps
    if explore.all():
        return random_actions
    return np.where(explore, random_actions, greedy(observations))


class DQNActor:
    """What a rollout worker runs: the Q-network's epsilon-greedy policy on the worker's envs (its own RNG)."""

    def __init__(self, config: DQNConfig, spaces, stepper: VecStepper):
        self.policy = QPolicy(spaces.observation_space, spaces.action_space, config.hidden)
        self.rng = np.random.default_rng(config.seed)
        self.collector = TransitionCollector(stepper, self._act)

    def _act(self, observations: np.ndarray, epsilon: float) -> np.ndarray:
        return epsilon_greedy(self.policy.greedy_numpy, observations, epsilon, self.policy.num_actions, self.rng)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


class DQN(Algorithm, Distributable):
    """One iteration = one vector step (epsilon-greedy), stored in the replay, and every
    --train-freq vector steps one compiled update of --gradient-steps TD steps."""

    name = "dqn"
    config_class = DQNConfig
    action_spaces = (gym.spaces.Discrete,)
    loss_metric = "td_loss"
    presets = PRESETS

    @classmethod
    def actor(cls, config: DQNConfig, spaces, stepper: VecStepper) -> DQNActor:
        """A rollout worker acts with the Q-network epsilon-greedily; it needs no replay, optimizer or target."""
        return DQNActor(config, spaces, stepper)

    def __init__(self, config: DQNConfig, spaces, stepper: VecStepper):
        self.config, self.stepper = config, stepper
        self.policy = QPolicy(spaces.observation_space, spaces.action_space, config.hidden)
        self.optimizer = keras.optimizers.Adam(learning_rate=config.lr, epsilon=config.adam_eps)
        self.optimizer.build(self.policy.variables)
        self.update = DQNUpdate(self.policy, self.optimizer, config.gamma, config.loss, config.double,
                                config.grad_clip, config.target_sync, config.tau)
        if networks.is_image_space(spaces.observation_space):   # stacked frames: each frame stored once
            # one frame ring per sub-env: stepper.num_envs counts the envs of every rollout worker
            self.buffer = PixelReplayBuffer(config.buffer_size, spaces.observation_space, spaces.action_space,
                                            seed=config.seed, num_envs=stepper.num_envs)
        else:
            self.buffer = ReplayBuffer(config.buffer_size, spaces.observation_space, spaces.action_space,
                                       seed=config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.collector = TransitionCollector(stepper, self._act)
        self.vector_steps = 0
        self.next_log = config.log_every
        self.metrics = {"td_loss": math.nan, "q_mean": math.nan}
        # Warm-up: no updates until the buffer holds this many transitions. Actions are uniformly random
        # only in the run's first warm_up_size steps; a resume without the replay buffer in the checkpoint
        # refills it with the current epsilon-greedy policy, which is what the lost buffer held, rather
        # than with random play that the agent has long outgrown.
        self.warm_up_size = min(config.learning_starts, config.buffer_size)

    # --- checkpoint content; the epsilon schedule's position is the env-step count, which the trainer saves.
    def trackables(self) -> dict:
        return {"q": self.policy.model, "q_target": self.policy.target_model, "optimizer": self.optimizer,
                "gradient_steps": self.update.gradient_steps_done, "target_syncs": self.update.target_syncs}

    def state(self) -> dict:
        state = {"rng": rng_state_to_array(self.rng), "loop": np.array([self.vector_steps, self.next_log])}
        if self.config.checkpoint_replay:
            state.update({f"replay/{k}": v for k, v in self.buffer.state().items()})
        return state

    def load_state(self, state: dict) -> None:
        rng_state_from_array(self.rng, state["rng"])
        self.vector_steps, self.next_log = (int(x) for x in state["loop"])
        if self.config.checkpoint_replay:
            self.buffer.load({k[len("replay/"):]: v for k, v in state.items() if k.startswith("replay/")})

    def epsilon(self) -> float:
        config, steps = self.config, self.stepper.env_steps
        if steps < self.warm_up_size:
            return 1.0
        return epsilon(steps, config.eps_start, config.eps_end, config.eps_decay_steps, config.eps_schedule)

    def _act(self, observations: np.ndarray, epsilon: float) -> np.ndarray:
        return epsilon_greedy(self.policy.greedy_numpy, observations, epsilon, self.policy.num_actions, self.rng)

    def worker_request(self, request: dict, index: int, workers: int) -> dict:
        """With --worker-eps, once the warm-up's uniformly random steps are done, worker i explores with its
        fixed epsilon_i (`worker_epsilon`) instead of the schedule's value in `request`."""
        if not self.config.worker_eps or len(self.buffer) < self.warm_up_size:
            return request
        return {**request, "epsilon": worker_epsilon(self.config.worker_eps, self.config.worker_eps_alpha, index,
                                                     workers)}

    def iteration(self) -> Iteration:
        """Store the transitions of one collected batch (in this process: one vector step), then take the
        updates that fall due: one every --train-freq vector steps (a worker's vector step with --workers)."""
        warm_up = len(self.buffer) < self.warm_up_size
        eps = self.epsilon()
        transitions = self.collector.collect(epsilon=eps)
        self.buffer.add(**transitions.arrays())
        freq = self.config.train_freq
        due = (self.vector_steps + transitions.vector_steps) // freq - self.vector_steps // freq
        self.vector_steps += transitions.vector_steps
        finite = []
        for _ in range(0 if warm_up else due):
            self.metrics = self.update(self.sample())
            finite.append(int(self.metrics["skipped"]) == 0)   # the guard counts updates with a skipped step
        trained = bool(finite)
        steps = self.stepper.env_steps
        log = steps >= self.next_log
        if log:
            self.next_log = steps + self.config.log_every
        return Iteration(lambda: self._diagnostics(eps), log=log, finite=finite, updated=trained)

    def _diagnostics(self, eps: float) -> dict:
        """The logged values; read only when the trainer logs (variable reads and len(buffer) cost per step)."""
        schedule = {} if self.config.worker_eps else {"epsilon": eps}   # else each worker's own, fixed
        return {**{k: float(v) for k, v in self.metrics.items() if k != "skipped"}, **schedule,
                "target_syncs": int(self.update.target_syncs.numpy()),
                "gradient_steps": int(self.update.gradient_steps_done.numpy()), "buffer_size": len(self.buffer)}

    def sample(self):
        """--gradient-steps mini-batches of --batch-size transitions, stacked for one compiled update."""
        return self.buffer.sample(self.config.batch_size, self.config.gradient_steps)
