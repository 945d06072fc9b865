"""A2C: synchronous advantage actor-critic (Mnih et al. 2016, the synchronous variant), the book's next
step after vanilla PG.

Each iteration collects T vector steps of N envs (`tfpg.algos.actor_critic`: GAE(lambda) advantages A_t and
critic targets G_t = A_t + V_old(s_t)) and takes one gradient step on the whole batch of M transitions:

    loss_policy  = -1/M sum_t A_t log pi_theta(a_t|s_t)
    loss_entropy = -beta 1/M sum_t H(pi_theta(.|s_t))
    value_loss   = 1/M sum_t (V_phi(s_t) - G_t)^2

With separate networks, theta follows loss_policy + loss_entropy (Adam, --lr) and phi follows
value_loss (Adam, --critic-lr). With --joint-update (Stable-Baselines3's A2C), one optimizer step (--lr) over
theta and phi together follows loss_policy + loss_entropy + c_v value_loss, c_v = --vf-coef, its gradient
clipped as one vector (--grad-clip), so a batch the critic mispredicts badly moves the policy less; with
--shared-torso one network body carries both heads, trained that way. --optimizer rmsprop takes PyTorch's
RMSprop (`tfpg.algos.actor_critic.built_optimizer`) in place of Adam.
lambda = 1 gives the n-step returns of the original A2C (each step's return bootstrapped from
V at the end of the rollout), lambda < 1 GAE. Without a preset the advantages are used as they come
(--normalize false, as in Stable-Baselines3's A2C; the rewards are scaled by --normalize-reward) and the
critic is a tanh MLP (--critic-activation), and the policy's lr follows each update's exact KL on its batch,
KL_t = 1/M sum_t KL(pi_old(.|s_t) || pi_theta(.|s_t)) (--kl-adaptive-lr, `tfpg.maths.schedules.adapt_learning_rate`):
lr / 1.5 when KL_t > 2 --target-kl, x 1.5 up to --lr (or its linear schedule) when KL_t < --target-kl / 2
(with --joint-update that lr is the one optimizer's, so the critic's steps follow it too).
"""
from __future__ import annotations

import tensorflow as tf

from tfpg.algos.a2c.config import A2CConfig
from tfpg.algos.a2c.presets import PRESETS
from tfpg.maths.updates import apply_if_finite
from tfpg.algos.actor_critic import ActorCritic, built_optimizer, unique_variables
from tfpg.algos.actor_critic_base import ActorCriticAlgorithm
from tfpg.algos.base import Iteration
from tfpg.maths.losses import entropy_loss, value_estimation_loss
from tfpg.maths.schedules import adapt_learning_rate, constant_or_linear


def make_a2c_update(core: ActorCritic, optimizer, critic_optimizer, config: A2CConfig):
    """One compiled gradient step on a batch: (observations, actions, advantages, returns) -> metrics."""
    policy = core.policy
    policy_variables = unique_variables(policy.variables)
    critic_variables = core.critic_variables
    joint_variables = unique_variables(policy.variables, critic_variables)
    scalar = tf.TensorSpec([None], tf.float32)

    @tf.function(input_signature=[policy.obs_spec, policy.action_spec, scalar, scalar])
    def update(observations, actions, advantages, returns):
        with tf.GradientTape(persistent=True) as tape:
            distribution = policy.distribution(observations)
            loss_policy = -tf.reduce_mean(advantages * distribution.log_prob(actions))
            loss_entropy = config.entropy_beta * entropy_loss(distribution.entropy())
            value_loss = value_estimation_loss(core.value(observations), returns)
            actor_loss = loss_policy + loss_entropy
            joint_loss = actor_loss + config.vf_coef * value_loss
        if config.joint:
            finite = apply_if_finite(optimizer, joint_loss, tape.gradient(joint_loss, joint_variables),
                                     joint_variables, config.grad_clip)
        else:
            actor_ok = apply_if_finite(optimizer, actor_loss, tape.gradient(actor_loss, policy_variables),
                                       policy_variables, config.grad_clip)
            critic_ok = apply_if_finite(critic_optimizer, value_loss, tape.gradient(value_loss, critic_variables),
                                        critic_variables, config.grad_clip)
            finite = tf.logical_and(actor_ok, critic_ok)
        return {"loss_policy": loss_policy, "loss_entropy": loss_entropy, "value_loss": value_loss,
                "finite": finite}

    return update.get_concrete_function()


class A2C(ActorCriticAlgorithm):
    """Collect T x N steps, compute GAE, one compiled actor-critic gradient step."""

    name = "a2c"
    config_class = A2CConfig
    loss_metric = "loss_policy"
    presets = PRESETS

    def __init__(self, config: A2CConfig, spaces, stepper):
        self._build_core(config, spaces, stepper, shared_torso=config.shared_torso)
        critic_variables = self.core.critic_variables
        # a joint update: one optimizer over policy and critic together, the critic's own stays unused
        self.optimizer = built_optimizer(config.lr, config.adam_eps, unique_variables(self.policy.variables, critic_variables)
                                         if config.joint else self.policy.variables, config.optimizer)
        self.critic_optimizer = built_optimizer(config.critic_lr, config.adam_eps,
                                                None if config.joint else critic_variables, config.optimizer)
        self.update = make_a2c_update(self.core, self.optimizer, self.critic_optimizer, config)
        self.lr = constant_or_linear(config.lr, config.linear_lr, config.total_steps)
        self.critic_lr = constant_or_linear(config.critic_lr, config.linear_lr, config.total_steps)

    def trackables(self) -> dict:
        return {**self.core.trackables(), "optimizer": self.optimizer, "critic_optimizer": self.critic_optimizer}

    def iteration(self) -> Iteration:
        batch = self.core.collect()
        steps = self.stepper.env_steps
        lr = self.lr(steps)
        if self.config.kl_adaptive_lr:   # the lr follows the KL, capped by the schedule at this update's step
            lr = min(float(self.optimizer.learning_rate.numpy()), lr)
        self.optimizer.learning_rate.assign(lr)
        self.critic_optimizer.learning_rate.assign(self.critic_lr(steps))
        metrics = {k: v.numpy() for k, v in self.update(batch.observations, batch.actions, batch.advantages,
                                                        batch.returns).items()}
        finite = bool(metrics.pop("finite"))
        metrics = {k: float(v) for k, v in metrics.items()}
        metrics.update(self.batch_diagnostics(batch))
        metrics["lr"] = float(self.optimizer.learning_rate.numpy())
        if self.config.kl_adaptive_lr:   # the lr of the next update, from this one's KL
            adapt_learning_rate(self.optimizer, metrics["kl"], self.config.target_kl, self.lr(steps))
        return Iteration(metrics, finite=[finite])

