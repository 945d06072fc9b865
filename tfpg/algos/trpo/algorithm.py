"""TRPO (Schulman et al. 2015) and the natural policy gradient (Kakade 2001), CS285's advanced policy gradients.

Each iteration collects T vector steps of N envs (`tfpg.algos.actor_critic`: GAE(lambda) advantages A_t,
standardised, critic targets G_t = A_t + V_old(s_t), pi_old), then

    L(theta) = mean_t pi_theta(a_t|s_t) / pi_old(a_t|s_t) A_t            the surrogate, L(theta_old) = mean A
    g        = grad L(theta_old)                                           = the policy gradient
    x        ~= (F + lambda I)^-1 g   by conjugate gradient, F v by double backprop of the mean KL
    s        = sqrt(2 delta / g^T x) x                                     KL(pi_old || pi_{theta_old + s}) ~= delta

(`tfpg.maths.natural_gradient`). TRPO then backtracks: theta = theta_old + f s for the largest f in 1, rho, rho^2,
... (--backtracks tries, rho = --backtrack-ratio) with L(theta) > L(theta_old) and the measured mean
KL <= delta; if none passes, theta stays theta_old and step_fraction = 0 is logged. `--algo npg` takes
the natural step s as it is (--line-search false): the natural policy gradient with step size
sqrt(2 delta / g^T x). The critic V_phi is fitted afterwards, separately, by --critic-epochs passes of
shuffled --minibatch-size minibatches of Adam steps (--critic-lr) on mean (V_phi(s_t) - G_t)^2.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfpg.maths.updates import apply_if_finite
from tfpg.algos.actor_critic import ActorCritic, built_optimizer
from tfpg.algos.actor_critic_base import ActorCriticAlgorithm
from tfpg.algos.base import Iteration
from tfpg.algos.trpo.config import NPGConfig, TRPOConfig
from tfpg.algos.trpo.presets import PRESETS
from tfpg.maths.losses import value_estimation_loss
from tfpg.maths.natural_gradient import (
    LineSearchResult,
    assign_flat,
    backtracking_line_search,
    flat_gradient,
    flat_params,
    importance_surrogate,
    make_natural_direction,
    mean_kl,
    natural_step,
    params_spec,
)


class NaturalStep:
    """The compiled pieces of the policy step: g and L(theta_old); x by CG; L and KL at the current theta."""

    def __init__(self, policy, config: TRPOConfig):
        self.policy = policy
        scalar = tf.TensorSpec([None], tf.float32)
        batch_spec = [policy.obs_spec, policy.action_spec, scalar, scalar]

        @tf.function(input_signature=batch_spec)
        def gradient(observations, actions, advantages, old_log_probs):
            with tf.GradientTape() as tape:
                surrogate = importance_surrogate(policy.distribution(observations).log_prob(actions), old_log_probs,
                                                 advantages)
            return flat_gradient(tape, surrogate, policy.variables), surrogate

        @tf.function(input_signature=[*batch_spec, params_spec(policy)])
        def surrogate_and_kl(observations, actions, advantages, old_log_probs, params_old):
            log_probs = policy.distribution(observations).log_prob(actions)
            return importance_surrogate(log_probs, old_log_probs, advantages), mean_kl(policy, observations, params_old)

        self.gradient = gradient.get_concrete_function()
        self.surrogate_and_kl = surrogate_and_kl.get_concrete_function()
        self.direction = make_natural_direction(policy, config.cg_damping, config.cg_iterations)

    def __call__(self, batch, config: TRPOConfig) -> tuple[LineSearchResult, float, bool]:
        """theta <- theta_old + f s (line search) or theta_old + s (NPG); returns (result, ||r|| of CG, finite).
        A non-finite g or x leaves theta unchanged."""
        variables = self.policy.variables
        data = (batch.observations, batch.actions, batch.advantages, batch.log_probs)
        g, surrogate_old = self.gradient(*data)
        x, residual = self.direction(batch.observations, batch.params, g)
        if not (np.all(np.isfinite(x.numpy())) and np.all(np.isfinite(g.numpy()))):
            return LineSearchResult(0.0, 0.0, 0.0), float("nan"), False
        step = natural_step(g, x, config.max_kl)
        theta_old = flat_params(variables)

        def evaluate():
            return self.surrogate_and_kl(*data, batch.params)

        if config.line_search:
            result = backtracking_line_search(variables, theta_old, step, evaluate, float(surrogate_old),
                                              config.max_kl, config.backtracks, config.backtrack_ratio)
        else:
            assign_flat(variables, theta_old + step)
            surrogate, kl = (float(t) for t in evaluate())
            result = LineSearchResult(1.0, surrogate - float(surrogate_old), kl)
        return result, float(residual), True


def make_critic_fit(core: ActorCritic, optimizer, config: TRPOConfig, shuffle: tf.random.Generator):
    """Compiled: --critic-epochs passes of shuffled --minibatch-size minibatches, one Adam step each, on
    mean (V(s) - G)^2; returns (loss on the first minibatch, loss on the last, skipped steps)."""
    scalar = tf.TensorSpec([None], tf.float32)
    variables = core.critic_variables

    @tf.function(input_signature=[core.policy.obs_spec, scalar])
    def fit(observations, returns):
        n = tf.shape(returns)[0]
        size = config.minibatch_size
        first, last, skipped = tf.constant(-1.0), tf.constant(0.0), tf.constant(0)
        for _ in tf.range(config.critic_epochs):
            order = tf.argsort(shuffle.uniform([n]))
            for i in tf.range((n + size - 1) // size):
                rows = order[i * size:tf.minimum((i + 1) * size, n)]
                with tf.GradientTape() as tape:
                    loss = value_estimation_loss(core.value(tf.gather(observations, rows)), tf.gather(returns, rows))
                ok = apply_if_finite(optimizer, loss, tape.gradient(loss, variables), variables, config.grad_clip)
                skipped += 1 - tf.cast(ok, tf.int32)
                first = tf.where(first < 0, loss, first)
                last = loss
        return first, last, skipped

    return fit.get_concrete_function()


class TRPO(ActorCriticAlgorithm):
    """Collect T x N steps, GAE, the natural step with (TRPO) or without (NPG) the line search, then fit V."""

    name = "trpo"
    config_class = TRPOConfig
    loss_metric = "improvement"
    presets = PRESETS

    def __init__(self, config: TRPOConfig, spaces, stepper):
        self._build_core(config, spaces, stepper)
        self.critic_optimizer = built_optimizer(config.critic_lr, config.adam_eps, self.core.critic_variables)
        self.shuffle = tf.random.Generator.from_seed(config.seed + 1)
        self.natural_step = NaturalStep(self.policy, config)
        self.fit_critic = make_critic_fit(self.core, self.critic_optimizer, config, self.shuffle)

    def trackables(self) -> dict:
        return {**self.core.trackables(), "critic_optimizer": self.critic_optimizer, "shuffle": self.shuffle}

    def iteration(self) -> Iteration:
        batch = self.core.collect()
        result, residual, finite = self.natural_step(batch, self.config)
        first, last, skipped = (x.numpy() for x in self.fit_critic(batch.observations, batch.returns))
        metrics = {"step_fraction": result.step_fraction, "improvement": result.improvement,
                   "line_search_kl": result.kl, "cg_residual": residual, "rejected": float(result.step_fraction == 0),
                   "value_loss": float(first), "value_loss_after": float(last)}
        metrics.update(self.batch_diagnostics(batch))
        return Iteration(metrics, finite=[finite, int(skipped) == 0])


class NaturalPolicyGradient(TRPO):
    """--algo npg: TRPO's module with the line search off (the step s = sqrt(2 delta / g^T x) x as it is)."""

    name = "npg"
    config_class = NPGConfig
    presets = ()
