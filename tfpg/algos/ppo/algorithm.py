"""PPO with the clipped surrogate (Schulman et al. 2017).

Each iteration collects T vector steps of N envs (`tfpg.algos.actor_critic`: GAE(lambda) advantages A_t,
standardised, critic targets G_t = A_t + V_old(s_t), pi_old) and then, for K epochs, walks the
batch in shuffled minibatches of B transitions, one gradient step each on

    r_t          = pi_theta(a_t|s_t) / pi_old(a_t|s_t)
    loss_policy  = -mean_t min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)     (`tfpg.maths.losses`)
    loss_entropy = -beta mean_t H(pi_theta(.|s_t))
    value_loss   = mean_t (V_phi(s_t) - G_t)^2, or with --clip-range-vf the clipped form around V_old

theta follows loss_policy + loss_entropy (Adam, --lr), phi follows value_loss (Adam, --critic-lr).
Before each step the minibatch's approx_kl = mean[(r - 1) - log r] is checked: above 1.5 x --target-kl
the batch's remaining steps are skipped (KL early stop, as Stable-Baselines3 does). --linear-lr and
--linear-clip decay the learning rates and eps linearly to 0 over --total-steps (the zoo's lin_<x>).
All epochs and minibatches of an iteration run in one compiled call.

With --backend graph (`GraphPPO`, `tfpg.training.graph_trainer`) the rollout, GAE and all the epochs run in one
XLA-compiled program for K stacked agents, with the same loss functions reduced per agent.
"""
from __future__ import annotations

import tensorflow as tf

from tfpg.maths.updates import apply_if_finite
from tfpg.algos.actor_critic import ActorCritic, built_optimizer
from tfpg.algos.actor_critic_base import ActorCriticAlgorithm
from tfpg.algos.base import Iteration
from tfpg.algos.capabilities import GraphTrainable
from tfpg.algos.ppo.config import PPOConfig
from tfpg.algos.ppo.graph import GraphPPO, graph_refusal
from tfpg.algos.ppo.presets import PRESETS
from tfpg.core.errors import ConfigError
from tfpg.maths.losses import clipped_surrogate_loss, entropy_loss, value_estimation_loss
from tfpg.maths.schedules import constant_or_linear


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


class PPO(ActorCriticAlgorithm, GraphTrainable):
    """Collect T x N steps, compute GAE, K epochs of clipped-surrogate minibatch steps in one compiled call."""

    name = "ppo"
    config_class = PPOConfig
    loss_metric = "loss_policy"
    presets = PRESETS

    def __init__(self, config: PPOConfig, spaces, stepper):
        self._build_core(config, spaces, stepper)
        self.optimizer = built_optimizer(config.lr, config.adam_eps, self.policy.variables)
        self.critic_optimizer = built_optimizer(config.critic_lr, config.adam_eps, self.core.critic_variables)
        self.update = PPOUpdate(self.core, self.optimizer, self.critic_optimizer, config)
        self.lr = constant_or_linear(config.lr, config.linear_lr, config.total_steps)
        self.critic_lr = constant_or_linear(config.critic_lr, config.linear_lr, config.total_steps)
        self.clip_range = constant_or_linear(config.clip_range, config.linear_clip, config.total_steps)

    @classmethod
    def check_graph_backend(cls, config: PPOConfig) -> None:
        refusal = graph_refusal(config)
        if refusal:
            raise ConfigError(refusal)

    @classmethod
    def graph_learner(cls, config: PPOConfig, spaces, template, seeds: list[int]) -> GraphPPO:
        """The learner `tfpg.training.graph_trainer` runs for --backend graph: K agents with seeds `seeds`."""
        return GraphPPO(config, spaces, template, seeds)

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

