"""PPO with the clipped surrogate (Schulman et al. 2017).

Each iteration collects T vector steps of N envs (`tfpg.actor_critic`: GAE(lambda) advantages A_t,
standardised, critic targets G_t = A_t + V_old(s_t), pi_old) and then, for K epochs, walks the
batch in shuffled minibatches of B transitions, one gradient step each on

    r_t          = pi_theta(a_t|s_t) / pi_old(a_t|s_t)
    loss_policy  = -mean_t min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)     (`tfpg.losses`)
    loss_entropy = -beta mean_t H(pi_theta(.|s_t))
    value_loss   = mean_t (V_phi(s_t) - G_t)^2, or with --clip-range-vf the clipped form around V_old

theta follows loss_policy + loss_entropy (Adam, --lr), phi follows value_loss (Adam, --critic-lr).
Before each step the minibatch's approx_kl = mean[(r - 1) - log r] is checked: above 1.5 x --target-kl
the batch's remaining steps are skipped (KL early stop, as Stable-Baselines3 does). --linear-lr and
--linear-clip decay the learning rates and eps linearly to 0 over --total-steps (the zoo's lin_<x>).
All epochs and minibatches of an iteration run in one compiled call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import tensorflow as tf

from tfpg.actor_critic import ActorCritic, ActorCriticConfig, apply_if_finite, built_adam
from tfpg.algos.actor_critic_base import ActorCriticAlgorithm
from tfpg.algos.base import Iteration
from tfpg.config import Preset
from tfpg.losses import clipped_surrogate_loss, entropy_loss, value_estimation_loss
from tfpg.options import option
from tfpg.schedules import constant_or_linear


@dataclass
class PPOConfig(ActorCriticConfig):
    """PPO-clip: epochs of shuffled minibatch steps on each fixed-horizon batch (see the module docstring)."""

    algo: str = "ppo"
    minibatch_size: int = 64
    adam_eps: float = 1e-5   # Stable-Baselines3's
    epochs: int = option(10, "passes over each batch, each in shuffled minibatches of --minibatch-size (one, if "
                                 "the batch is smaller)", low=1)
    clip_range: float = option(0.2, "eps of the clipped ratio clip(r, 1 - eps, 1 + eps)", low=0.0, low_open=True,
                               high=1.0)
    clip_range_vf: float = option(0.0, "keep V within this of the batch's old values unless moving further lowers "
                                       "the error (clipped value loss); 0 = off", low=0.0)
    linear_lr: bool = option(False, "decay --lr (and --critic-lr) linearly to 0 over --total-steps")
    linear_clip: bool = option(False, "decay --clip-range linearly to 0 over --total-steps")
    critic_lr: float = 3e-4

    unused: ClassVar[tuple[str, ...]] = ("critic_epochs",)

    @classmethod
    def group_title(cls) -> str:
        return "ppo"


ZOO = "rl-baselines3-zoo hyperparams/ppo.yml entry {env} (rl-zoo3 2.x) with Stable-Baselines3 PPO defaults"

PRESETS = (
    Preset("ppo-cartpole", "ppo",
           "PPO on CartPole-v1: 8 envs x 32 steps, one minibatch of 256, 20 epochs, GAE(0.8), gamma 0.98, lr and "
           "clip range linear from 1e-3 and 0.2",
           ZOO.format(env="CartPole-v1") + " (64-64 tanh, max_grad_norm 0.5, standardised advantages)",
           dict(env_id="CartPole-v1", num_envs=8, horizon=32, minibatch_size=256, epochs=20, gae_lambda=0.8,
                gamma=0.98, entropy_beta=0.0, lr=1e-3, critic_lr=1e-3, linear_lr=True, clip_range=0.2,
                linear_clip=True, normalize=True, normalize_obs=False, grad_clip=0.5, hidden=(64, 64),
                critic_hidden=(64, 64), activation="tanh", stop_reward=475.0, total_steps=100_000), default=True),
    Preset("ppo-lunarlander-continuous", "ppo",
           "PPO on LunarLanderContinuous-v3: 16 envs x 1024 steps, minibatches of 64, 4 epochs, GAE(0.98), gamma "
           "0.999, entropy 0.01, lr 3e-4",
           ZOO.format(env="LunarLanderContinuous-v3") + " (64-64 tanh, clip 0.2, max_grad_norm 0.5, standardised "
           "advantages); observation normalisation added (the zoo entry has none)",
           dict(env_id="LunarLanderContinuous-v3", num_envs=16, vector_mode="sync", horizon=1024, minibatch_size=64,
                epochs=4, gae_lambda=0.98, gamma=0.999, entropy_beta=0.01, lr=3e-4, critic_lr=3e-4, clip_range=0.2,
                normalize=True, normalize_obs=True, grad_clip=0.5, hidden=(64, 64), critic_hidden=(64, 64),
                activation="tanh", total_steps=1_000_000, eval_every=100_000, eval_episodes=10), default=True),
)


class PPOUpdate:
    """All epochs x minibatches of one iteration in one compiled call; shuffles with a checkpointed generator."""

    def __init__(self, core: ActorCritic, optimizer, critic_optimizer, config: PPOConfig):
        self.core, self.optimizer, self.critic_optimizer, self.config = core, optimizer, critic_optimizer, config
        self.shuffle = tf.random.Generator.from_seed(config.seed + 1)
        policy = core.policy
        scalar = tf.TensorSpec([None], tf.float32)
        self._graph = tf.function(self._update, input_signature=[
            policy.obs_spec, policy.action_spec, scalar, scalar, scalar, scalar, tf.TensorSpec([], tf.float32)
        ]).get_concrete_function()

    def _step(self, observations, actions, advantages, returns, old_log_probs, old_values, clip_range):
        """One minibatch: the losses, the KL test, and (if it passes) the two Adam steps."""
        config, policy = self.config, self.core.policy
        with tf.GradientTape(persistent=True) as tape:
            distribution = policy.distribution(observations)
            loss_policy, info = clipped_surrogate_loss(distribution.log_prob(actions), old_log_probs, advantages,
                                                       clip_range)
            actor_loss = loss_policy + config.entropy_beta * entropy_loss(distribution.entropy())
            value_loss = value_estimation_loss(self.core.value(observations), returns, old_values,
                                               config.clip_range_vf or None)
        go_on = tf.constant(True) if not config.target_kl else info["approx_kl"] <= 1.5 * config.target_kl
        applied = tf.constant(False)
        if go_on:
            actor_ok = apply_if_finite(self.optimizer, actor_loss, tape.gradient(actor_loss, policy.variables),
                                       policy.variables, config.grad_clip)
            critic_vars = self.core.critic_variables
            critic_ok = apply_if_finite(self.critic_optimizer, value_loss, tape.gradient(value_loss, critic_vars),
                                        critic_vars, config.grad_clip)
            applied = tf.logical_and(actor_ok, critic_ok)
        return go_on, applied, tf.stack([loss_policy, value_loss, info["clip_fraction"], info["approx_kl"]])

    def _update(self, observations, actions, advantages, returns, old_log_probs, old_values, clip_range):
        n = tf.shape(advantages)[0]
        size = self.config.minibatch_size
        minibatches = (n + size - 1) // size
        sums, steps, skipped, epochs_run = tf.zeros(4), tf.constant(0), tf.constant(0), tf.constant(0)
        go_on = tf.constant(True)
        for _ in tf.range(self.config.epochs):
            if not go_on:
                break
            order = tf.argsort(self.shuffle.uniform([n]))
            epochs_run += 1
            for i in tf.range(minibatches):
                rows = order[i * size:tf.minimum((i + 1) * size, n)]
                go_on, applied, values = self._step(
                    tf.gather(observations, rows), tf.gather(actions, rows), tf.gather(advantages, rows),
                    tf.gather(returns, rows), tf.gather(old_log_probs, rows), tf.gather(old_values, rows), clip_range)
                if not go_on:
                    break
                sums += values
                steps += 1
                skipped += 1 - tf.cast(applied, tf.int32)
        means = sums / tf.cast(tf.maximum(steps, 1), tf.float32)
        return {"loss_policy": means[0], "value_loss": means[1], "clip_fraction": means[2], "approx_kl": means[3],
                "gradient_steps": steps, "skipped": skipped, "epochs_run": epochs_run}

    def __call__(self, batch, clip_range: float) -> dict:
        return self._graph(batch.observations, batch.actions, batch.advantages, batch.returns, batch.log_probs,
                           batch.values, tf.constant(clip_range, tf.float32))


class PPO(ActorCriticAlgorithm):
    """Collect T x N steps, compute GAE, K epochs of clipped-surrogate minibatch steps in one compiled call."""

    name = "ppo"
    config_class = PPOConfig
    loss_metric = "loss_policy"
    presets = PRESETS

    def __init__(self, config: PPOConfig, spaces, stepper):
        self._build_core(config, spaces, stepper)
        self.optimizer = built_adam(config.lr, config.adam_eps, self.policy.variables)
        self.critic_optimizer = built_adam(config.critic_lr, config.adam_eps, self.core.critic_variables)
        self.update = PPOUpdate(self.core, self.optimizer, self.critic_optimizer, config)
        self.lr = constant_or_linear(config.lr, config.linear_lr, config.total_steps)
        self.critic_lr = constant_or_linear(config.critic_lr, config.linear_lr, config.total_steps)
        self.clip_range = constant_or_linear(config.clip_range, config.linear_clip, config.total_steps)

    def trackables(self) -> dict:
        return {**self.core.trackables(), "optimizer": self.optimizer, "critic_optimizer": self.critic_optimizer,
                "shuffle": self.update.shuffle}

    def iteration(self) -> Iteration:
        batch = self.core.collect()
        steps = self.stepper.env_steps   # the schedules' position: env steps before this update
        self.optimizer.learning_rate.assign(self.lr(steps))
        self.critic_optimizer.learning_rate.assign(self.critic_lr(steps))
        clip_range = self.clip_range(steps)
        out = {k: v.numpy() for k, v in self.update(batch, clip_range).items()}
        skipped = int(out.pop("skipped"))
        finite = [True] * (int(out["gradient_steps"]) - skipped) + [False] * skipped
        metrics = {k: float(v) for k, v in out.items()}
        metrics.update(self.batch_diagnostics(batch), lr=self.lr(steps), clip_range=clip_range)
        return Iteration(metrics, finite=finite)
