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

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import tensorflow as tf

from tfpg.algos.actor_critic import ActorCritic, ActorCriticConfig, apply_if_finite, built_optimizer
from tfpg.algos.actor_critic_base import ActorCriticAlgorithm
from tfpg.algos.base import Iteration
from tfpg.config.run import Preset
from tfpg.maths.losses import value_estimation_loss
from tfpg.maths.natural_gradient import (LineSearchResult, assign_flat, backtracking_line_search, flat_gradient, flat_params,
                                   importance_surrogate, make_natural_direction, mean_kl, natural_step, params_spec)
from tfpg.config.options import option


@dataclass
class TRPOConfig(ActorCriticConfig):
    """TRPO: natural step + backtracking line search on the KL trust region (see the module docstring)."""

    algo: str = "trpo"
    minibatch_size: int = 128
    critic_epochs: int = 10
    critic_lr: float = 1e-3
    grad_clip: float = 0.0
    max_kl: float = option(0.01, "delta: the trust region, mean KL(pi_old || pi_new) over the batch", low=0.0,
                           low_open=True)
    cg_iterations: int = option(15, "conjugate-gradient iterations for x ~= (F + damping I)^-1 g", low=1)
    cg_damping: float = option(0.1, "damping lambda added to the Fisher matrix", low=0.0)
    line_search: bool = option(True, "backtracking line search on the surrogate and the measured KL; false: the "
                                     "natural step as it is (the natural policy gradient, --algo npg)")
    backtracks: int = option(10, "line-search tries (fractions 1, r, r^2, ... of the natural step)", low=1)
    backtrack_ratio: float = option(0.8, "r, the line search's shrink factor", low=0.0, low_open=True, high=1.0)

    # The policy moves by the natural step, not by Adam: --lr and the Adam-step options are not used.
    unused: ClassVar[tuple[str, ...]] = ("lr", "target_kl", "entropy_beta", "kl_adaptive_lr")

    @classmethod
    def group_title(cls) -> str:
        return "trpo / npg"


@dataclass
class NPGConfig(TRPOConfig):
    """The natural policy gradient: TRPO's step without the line search."""

    algo: str = "npg"
    line_search: bool = False


ZOO = "rl-baselines3-zoo hyperparams/trpo.yml entry {env} (rl-zoo3 2.x) with sb3-contrib TRPO defaults"

PRESETS = (
    Preset("trpo-cartpole", "trpo",
           "TRPO on CartPole-v1: 2 envs x 512 steps, delta 0.01, CG damping 1e-3, GAE(0.98), critic 20 passes of "
           "minibatches of 512 at Adam 1e-3",
           ZOO.format(env="CartPole-v1") + " (cg_max_steps 15, line search 10 x 0.8, 64-64 tanh, standardised "
           "advantages); deviation: a ReLU critic (sb3-contrib's is tanh)",
           dict(env_id="CartPole-v1", num_envs=2, horizon=512, minibatch_size=512, cg_damping=1e-3, gae_lambda=0.98,
                gamma=0.99, critic_lr=1e-3, critic_epochs=20, max_kl=0.01, cg_iterations=15, backtracks=10,
                backtrack_ratio=0.8, normalize=True, normalize_obs=False, normalize_reward=False, critic_activation="relu",
                hidden=(64, 64),
                critic_hidden=(64, 64), activation="tanh", stop_reward=475.0, total_steps=100_000), default=True),
    Preset("trpo-lunarlander-continuous", "trpo",
           "TRPO on LunarLanderContinuous-v3: 8 envs x 512 steps (batches of 4,096), observation and reward "
           "normalisation, delta 0.01, critic 20 passes of minibatches of 128; 500k steps",
           "tfpg's own tuning (README, LunarLanderContinuous TRPO), from the rl-baselines3-zoo hyperparams/trpo.yml "
           "entry LunarLanderContinuous-v3 (rl-zoo3 2.x: delta 0.01, damping 0.1, GAE(0.95), gamma 0.99, VecNormalize "
           "of observations and rewards, 20 critic updates) with sb3-contrib TRPO defaults; changed: 8 envs x 512 "
           "steps instead of 2 x 1024 (greedy 271, 269, 265, 241 after 500k on seeds 0-3; the zoo's shape gave 254, "
           "143, 179), 500k steps instead of 100k, a ReLU critic (sb3-contrib's is tanh)",
           dict(env_id="LunarLanderContinuous-v3", num_envs=8, vector_mode="sync", horizon=512, minibatch_size=128,
                critic_epochs=20, critic_lr=1e-3, max_kl=0.01, cg_damping=0.1, gae_lambda=0.95, gamma=0.99,
                normalize=True, normalize_obs=True, normalize_reward=True, critic_activation="relu",
                hidden=(64, 64), critic_hidden=(64, 64),
                activation="tanh", total_steps=500_000, eval_every=50_000, eval_episodes=10), default=True),
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
