"""DQN (Mnih et al., Nature 2015): Q-learning with experience replay and a target network.

Act epsilon-greedily with Q_theta, store every real transition (s, a, r, s', terminated) in a
replay buffer, and every `train_freq` vector steps take `gradient_steps` steps on uniformly
sampled mini-batches of

    y_j    = r_j + gamma * (1 - terminated_j) * max_a' Q_target(s'_j, a')          (no gradient)
    loss   = mean_j L(Q_theta(s_j, a_j) - y_j),   L(d) = d^2  or  Huber(d) = { d^2/2 if |d| <= 1, |d| - 1/2 }

Double DQN (van Hasselt et al. 2016) picks the next action with the online network and values it
with the target network: y_j = r_j + gamma (1 - terminated_j) Q_target(s'_j, argmax_a' Q_theta(s'_j, a')).

Every `target_sync` gradient steps the target network moves towards the online one,
theta_target <- tau * theta + (1 - tau) * theta_target (tau = 1: overwrite, as in the paper).

Only termination stops the bootstrap: after a time-limit truncation s' is the episode's true final
observation and still has a value.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from tfpg import envs as envs_lib
from tfpg import networks
from tfpg.checkpoint import rng_state_from_array, rng_state_to_array
from tfpg.config import DQNConfig
from tfpg.errors import ConfigError
from tfpg.replay import PixelReplayBuffer, ReplayBuffer
from tfpg.rollout import TransitionStepper
from tfpg.run import Run, RunResult

# (observation_space, num_actions, name) -> Keras model from observations to one Q-value per action.
QNetworkFactory = Callable[[gym.Space, int, str], keras.Model]


def mlp_q_network(hidden) -> QNetworkFactory:
    """Q-network factory for flat observations: an MLP with one linear output per action."""

    def build(observation_space: gym.Space, num_actions: int, name: str) -> keras.Model:
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise ConfigError(f"the MLP Q-network needs a flat Box observation space, got {observation_space}")
        return networks.mlp(int(observation_space.shape[0]), hidden, num_actions, name=name)

    return build


def default_q_network(hidden) -> QNetworkFactory:
    """Q-network factory: the Nature CNN for stacked uint8 frames, an MLP for flat observations."""

    def build(observation_space: gym.Space, num_actions: int, name: str) -> keras.Model:
        return networks.torso_for(observation_space, hidden, num_actions, name=name)

    return build


class QPolicy:
    """The greedy policy of a Q-network, a(s) = argmax_a Q(s, a), with its target network.

    Offers what the exporter and evaluation need: `model`, `observation_space`, `mode(obs)`,
    `q_values(obs)`, and `greedy_numpy` (one compiled call per batch of numpy observations).
    The torso comes from `network_factory`, so an image network drops in unchanged.
    """

    kind = "q_greedy"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, network_factory: QNetworkFactory):
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ConfigError(f"DQN needs a Discrete action space, but the env's is {action_space}; "
                              "use an env with discrete actions")
        self.observation_space = observation_space
        self.action_space = action_space
        self.num_actions = int(action_space.n)
        self.model = network_factory(observation_space, self.num_actions, "q")
        # Same architecture, same starting weights; from then on it changes only at syncs.
        self.target_model = network_factory(observation_space, self.num_actions, "q_target")
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
            grads = tape.gradient(loss_value, variables)
            if grad_clip > 0:
                grads, _ = tf.clip_by_global_norm(grads, grad_clip)
            # A NaN/inf step would destroy the weights and Adam's moments: skip it instead.
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(x)) for x in [loss_value, *grads]])

            def apply():
                optimizer.apply_gradients(zip(grads, variables))
                return tf.constant(True)

            tf.cond(finite, apply, lambda: tf.constant(False))
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


def train(config: DQNConfig, run_dir: str, export_path: str | None,
          network_factory: QNetworkFactory | None = None, resume: bool = False) -> RunResult:
    keras.utils.set_random_seed(config.seed)
    spaces = envs_lib.env_spaces(config.env_id)
    policy = QPolicy(spaces.observation_space, spaces.action_space, network_factory or default_q_network(config.hidden))
    optimizer = keras.optimizers.Adam(learning_rate=config.lr, epsilon=config.adam_eps)
    optimizer.build(policy.variables)
    update = DQNUpdate(policy, optimizer, config.gamma, config.loss, config.double, config.grad_clip,
                       config.target_sync, config.tau)
    if networks.is_image_space(spaces.observation_space):   # stacked frames: each frame stored once
        buffer = PixelReplayBuffer(config.buffer_size, spaces.observation_space, spaces.action_space,
                                   seed=config.seed, num_envs=config.num_envs)
    else:
        buffer = ReplayBuffer(config.buffer_size, spaces.observation_space, spaces.action_space, seed=config.seed)
    rng = np.random.default_rng(config.seed)

    envs = envs_lib.make_train_envs(config)
    run = Run(config, run_dir, export_path, policy=policy, resuming=resume)
    stepper = TransitionStepper(envs, on_episode=run.episode_done)
    loop = {"vector_steps": 0, "next_log": config.log_every}

    # Checkpoint content. The epsilon schedule's position is the env-step count, which Run saves.
    def get_state() -> dict:
        state = {"rng": rng_state_to_array(rng), "loop": np.array([loop["vector_steps"], loop["next_log"]])}
        if config.checkpoint_replay:
            state.update({f"replay/{k}": v for k, v in buffer.state().items()})
        return state

    def set_state(state: dict) -> None:
        rng_state_from_array(rng, state["rng"])
        loop["vector_steps"], loop["next_log"] = (int(x) for x in state["loop"])
        if config.checkpoint_replay:
            buffer.load({k[len("replay/"):]: v for k, v in state.items() if k.startswith("replay/")})

    run.attach({"q": policy.model, "q_target": policy.target_model, "optimizer": optimizer,
                "gradient_steps": update.gradient_steps_done, "target_syncs": update.target_syncs},
               get_state=get_state, set_state=set_state)
    if resume:
        stepper.restart(run.resume())
        stepper.env_steps = run.env_steps
    poisoned = {int(u) for u in os.environ.get("TFPG_TEST_POISON_UPDATES", "").split(",") if u}  # test hook
    # Warm-up: no updates until the buffer holds this many transitions. Actions are uniformly random
    # only in the run's first warm_up_size steps; a resume without the replay buffer in the checkpoint
    # refills it with the current epsilon-greedy policy, which is what the lost buffer held, rather
    # than with random play that the agent has long outgrown.
    warm_up_size = min(config.learning_starts, config.buffer_size)
    metrics = {"td_loss": math.nan, "q_mean": math.nan}
    run.start_clock()
    try:
        while not run.should_stop():
            warm_up = len(buffer) < warm_up_size
            eps = 1.0 if stepper.env_steps < warm_up_size else epsilon(stepper.env_steps, config.eps_start, config.eps_end,
                                              config.eps_decay_steps, config.eps_schedule)
            actions = epsilon_greedy(policy.greedy_numpy, stepper.observations, eps, policy.num_actions, rng)
            buffer.add(**vars(stepper.step(actions)))
            loop["vector_steps"] += 1
            trained = not warm_up and loop["vector_steps"] % config.train_freq == 0
            if trained:
                batch = buffer.sample(config.batch_size, config.gradient_steps)
                if run.updates in poisoned:
                    batch.rewards[:] = np.nan
                metrics = update(batch)
                run.update_finite(int(metrics.pop("skipped")) == 0)
            run.after_steps(stepper.env_steps)
            if stepper.env_steps >= loop["next_log"] or run.should_stop():
                loop["next_log"] = stepper.env_steps + config.log_every
                run.log(stepper.env_steps, {**{k: float(v) for k, v in metrics.items()}, "epsilon": eps,
                                            "target_syncs": int(update.target_syncs.numpy()),
                                            "gradient_steps": int(update.gradient_steps_done.numpy()),
                                            "buffer_size": len(buffer)})
            if trained:
                reseed = run.after_update()
                if reseed is not None:
                    stepper.restart(reseed)
    finally:
        envs.close()
    return run.finish(policy, spaces.observation_space, spaces.action_space)
