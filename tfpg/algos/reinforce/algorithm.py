"""The policy-gradient family: REINFORCE (Williams 1992) and the book's vanilla N-step PG.

    grad J(theta) ~= 1/sum_i T_i  sum_i sum_t  grad log pi_theta(a_t|s_t) * A_t

implemented as the surrogate loss, over the steps of one update batch,

    loss_policy  = -mean_t( w_t * A_t * log pi(a_t|s_t) )
    loss_entropy = -beta * mean_t H(pi(.|s_t))
    loss_total   = loss_policy + loss_entropy

with
    G_t  reward-to-go sum_{k>=t} gamma^(k-t) r_k, the whole-episode return G_0 (CS285's first
         estimator), the n-step return sum_{k<n} gamma^k r_{t+k} (+ gamma^n V(s_{t+n})), or the
         TD(lambda) return V(s_t) + sum_k (gamma lambda)^k delta_{t+k} (then A_t is GAE(lambda));
    A_t  = G_t - b(s_t), b a baseline (none, mean, moving, linear, critic), optionally standardised;
    w_t  = 1 on-policy; when a batch is reused for K gradient steps, the importance ratio
         pi_theta(a_t|s_t) / pi_old(a_t|s_t) (first-order off-policy PG, optionally truncated),
         held constant in the gradient so that grad = w_t * A_t * grad log pi.

Update rules (the batch-REINFORCE post): `batch` takes one step on the mean over all steps of
the batch (normalised by sum_i T_i); `episode` one step per episode (1/T); `step` one step per
transition; `minibatch` one step per shuffled minibatch of M steps. With reuse, `target_kl`
stops the epochs early once the sampled KL(pi_old || pi_theta) on the batch exceeds it, and
`kl_adaptive_lr` scales Adam's lr by 1/1.5 or 1.5 after each batch to keep that KL near the
target. A learned baseline (linear or critic) also bootstraps what was cut short: a time-limit
truncation and an unfinished n-step window add gamma^j V(s_{t+j}).

The policy is categorical (Discrete actions, softmax over logits) or a diagonal Gaussian (Box
actions, state-independent log-std); the algorithm only sees log pi, H and the distribution's
parameters, so every option above works with both. With `std_ceiling` the Gaussian log-std is
projected after each update onto log sigma_d <= log sigma_max(t), a ceiling falling log-linearly
from the initial sigma to `std_ceiling` over `std_ceiling_steps` env steps. With --normalize-obs
the policy's running observation statistics are updated from each collected batch before the
update uses it; with --normalize-reward each episode's rewards are divided by the running std of the
discounted return within episodes (`tfpg.models.normalization.RewardNormalizer`) before any return is formed.
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.maths import returns as returns_lib
from tfpg.algos.base import Algorithm, Iteration, PolicyActor
from tfpg.models.baselines import BASELINE_KINDS, explained_variance, make_baseline
from tfpg.core.checkpoint import rng_state_from_array, rng_state_to_array
from tfpg.config.run import PolicyGradientConfig, Preset
from tfpg.core.errors import ConfigError
from tfpg.models.networks import is_image_space
from tfpg.models.normalization import RewardNormalizer
from tfpg.config.options import option
from tfpg.models.policies import make_policy, policy_kind
from tfpg.experience.collectors import EpisodeCollector, NStepCollector
from tfpg.maths.schedules import adapt_learning_rate

tfd = tfp.distributions


@dataclass
class ReinforceConfig(PolicyGradientConfig):
    """The policy-gradient family: REINFORCE and the book's vanilla N-step PG (see the module docstring)."""

    algo: str = "reinforce"
    # The fallback defaults (an env without a preset) are the robust settings, not the book's naive ones:
    # a critic with GAE(0.95) returns (on standardised targets) and standardised advantages, observations
    # normalised, 2048-step batches reused for up to 10 epochs of 256-step minibatches until the batch KL
    # passes 0.02. The book's REINFORCE is `--preset book-cartpole-reinforce`.
    hidden: tuple[int, ...] = (64, 64)
    lr: float = 1e-3
    activation: str = "tanh"
    normalize_obs: bool = True
    # 80 full-batch Adam steps per batch, not 10: with 10 the critic barely moved between batches, its values
    # stayed flat and MountainCar-v0's flag was never found (-200 after 1M steps), Pendulum-v1 ended at -332;
    # with 80 (no preset, seed 0) MountainCar -109 after 1M, Pendulum -199, and Acrobot, LunarLander and
    # MountainCarContinuous learned too (README). A critic that fits is what makes GAE's advantages informative.
    critic_epochs: int = 80
    normalize: bool = True
    target_kl: float = 0.02
    # The lr follows each batch's sampled KL(pi_old || pi) (/ 1.5 above 2 --target-kl, x 1.5 back up to --lr below
    # half of it): --target-kl stops later epochs but cannot bound the first, whose 8 minibatch steps at 1e-3 reached
    # a KL of 0.25-2.0 on Pendulum-v1 (seed 2) after 830k steps and undid the swing-up (greedy -689 after 1M; with
    # it -162). With it every no-preset REINFORCE pair cleared its bar on seeds 0-2 (README, fallback defaults).
    kl_adaptive_lr: bool = True
    log_std_lr: float = option(0.0, "Adam learning rate of the Gaussian log-std, a separate optimizer; 0 = the "
                                    "policy's optimizer and --lr", low=0.0, high=1.0)
    std_ceiling: float = option(0.0, "Gaussian policy: cap sigma by a ceiling falling log-linearly from "
                                     "exp(--log-std-init) to this value over --std-ceiling-steps env steps (the "
                                     "log-std stays trainable below it); 0 = no ceiling", low=0.0)
    std_ceiling_steps: int = option(500_000, "env steps over which the --std-ceiling falls", low=1)
    returns: str = option("lambda", "reward_to_go: G_t from step t on; total: G_0 for every step (CS285); "
                                          "nstep: the next --n-steps discounted rewards, no complete episodes needed; "
                                          "lambda: TD(lambda) returns from the learned baseline (GAE advantages)",
                          choices=("reward_to_go", "total", "nstep", "lambda"))
    n_steps: int = option(10, "window of --returns nstep (the book's REWARD_STEPS)", low=1)
    update: str = option("minibatch", "batch: one step on the mean over all steps (1/sum T_i); episode: one step per "
                                  "episode (1/T); step: one step per transition; minibatch: one step per shuffled "
                                  "minibatch of --minibatch-size steps", choices=("batch", "episode", "step", "minibatch"))
    episodes_per_update: int = option(1, "complete episodes in each update batch", low=1)
    steps_per_update: int = option(2048, "collect at least this many steps of complete episodes per update; with "
                                      "--returns nstep, the transitions per batch", low=0)
    baseline: str = option("critic", "b(s) subtracted from returns: none, mean (of all returns seen), moving (mean of "
                                   "the last --baseline-window), linear (scikit-learn LinearRegression on states), "
                                   "critic (Keras value network)", choices=BASELINE_KINDS)
    baseline_window: int = option(1_000_000, "transitions in the moving baseline", low=1)
    critic_normalize: bool = option(True, "fit the critic on standardised returns (running mean/std of its targets) "
                                           "and scale its output back, so the reward's scale does not slow it down")
    reuse_epochs: int = option(10, "gradient steps per batch; > 1 weights each term by pi/pi_old (importance "
                                  "sampling)", low=1)
    is_clip: float = option(2.0, "truncate importance ratios at this value; 0 = off", low=0.0)
    grad_var_every: int = option(0, "log grad_var, the variance of per-episode gradient estimates, every N updates; "
                                    "0 = off", low=0)

    @classmethod
    def group_title(cls) -> str:
        return "reinforce (policy gradient)"

    def check(self) -> None:
        super().check()
        if self.std_ceiling and self.std_ceiling >= float(np.exp(self.log_std_init)):
            raise ConfigError(f"--std-ceiling {self.std_ceiling} must be below the initial sigma exp(--log-std-init) "
                              f"= {np.exp(self.log_std_init):.3g}, or 0 for no ceiling")
        if self.returns == "lambda" and self.baseline not in ("linear", "critic"):
            raise ConfigError("--returns lambda needs a learned value function: add --baseline critic (or linear)")
        if self.returns == "nstep" and self.update == "episode":
            raise ConfigError("--update episode needs complete episodes; use --returns reward_to_go or total, "
                              "or --update batch")
        if self.returns == "nstep" and self.normalize_reward:
            raise ConfigError("--normalize-reward scales the rewards of complete episodes; with --returns nstep use "
                              "--normalize-reward false")
        if self.returns == "nstep" and self.steps_per_update <= 0:
            raise ConfigError("--returns nstep needs --steps-per-update (transitions per batch), e.g. 8")


BOOK = "M. Lapan, Deep Reinforcement Learning Hands-On, 2nd ed. (Packt, 2020), ch. 11 \"Policy Gradients\""

PRESETS = (
    Preset("cartpole-reinforce", "reinforce",
           "REINFORCE on CartPole-v1 tuned for wall-clock speed to reward_100 >= 475",
           "tfpg's own tuning (benchmarks/cartpole_reinforce.py, README results table)",
           dict(env_id="CartPole-v1", num_envs=128, hidden=(128,), lr=0.02, gamma=0.99, episodes_per_update=32,
                returns="reward_to_go", normalize=True, stop_reward=475.0, total_steps=1_000_000,
                activation="relu", baseline="none", critic_epochs=1, is_clip=0.0, normalize_obs=False, reuse_epochs=1,
                steps_per_update=0, target_kl=0.0, update="batch", critic_normalize=False, kl_adaptive_lr=False), default=True),
    Preset("cartpole-reinforce-graph", "reinforce",
           "REINFORCE on CartPole-v1 with --backend graph: 64 in-graph envs x 64-step rollouts, each iteration one "
           "XLA program; reward-to-go cut at the rollout's end, standardised",
           "tfpg's own tuning (benchmarks/graph_cartpole.py, README in-graph results)",
           dict(env_id="CartPole-v1", backend="graph", num_envs=64, rollout_steps=64, hidden=(64,), lr=0.02, gamma=0.99,
                episodes_per_update=4, returns="reward_to_go", normalize=True, stop_reward=475.0, total_steps=1_000_000,
                activation="relu", baseline="none", critic_epochs=1, is_clip=0.0, normalize_obs=False, reuse_epochs=1,
                steps_per_update=0, target_kl=0.0, update="batch", critic_normalize=False, kl_adaptive_lr=False)),
    Preset("book-cartpole-reinforce", "reinforce",
           "the book's REINFORCE: 128 hidden, Adam 0.01, gamma 0.99, 4 episodes/update, no baseline",
           f"{BOOK}, script Chapter11/02_cartpole_reinforce.py",
           dict(env_id="CartPole-v1", num_envs=1, hidden=(128,), lr=0.01, gamma=0.99, episodes_per_update=4,
                returns="reward_to_go", normalize=False, baseline="none", stop_reward=475.0, total_steps=1_000_000,
                activation="relu", critic_epochs=1, is_clip=0.0, normalize_obs=False, reuse_epochs=1, steps_per_update=0,
                target_kl=0.0, update="batch", critic_normalize=False, kl_adaptive_lr=False),
           replaces=("seed000-cartpole-reinforce",)),
    Preset("book-cartpole-pg", "reinforce",
           "the book's vanilla PG: 10-step returns, batches of 8 transitions, mean baseline, entropy 0.01, Adam 0.001",
           f"{BOOK}, script Chapter11/04_cartpole_pg.py",
           dict(env_id="CartPole-v1", num_envs=1, hidden=(128,), lr=0.001, gamma=0.99, returns="nstep", n_steps=10,
                steps_per_update=8, baseline="mean", entropy_beta=0.01, normalize=False, stop_reward=475.0,
                total_steps=1_000_000,
                activation="relu", critic_epochs=1, episodes_per_update=4, is_clip=0.0, normalize_obs=False, reuse_epochs=1,
                target_kl=0.0, update="batch", critic_normalize=False, kl_adaptive_lr=False),
           replaces=("seed000-cartpole-pg",)),
    Preset("fastcampus-batch-reinforce", "reinforce",
           "batch-episodic REINFORCE: update every 2 episodes over sum T_i, gamma 1, normalised returns, 128 hidden",
           "blog post \"29. Policy Gradient 실습 2\" (Policy Gradient practice 2: Batch REINFORCE), notes on the "
           "Fastcampus reinforcement-learning course; the post gives no learning rate, 2e-4 used",
           dict(env_id="CartPole-v1", num_envs=1, hidden=(128,), lr=2e-4, gamma=1.0, update="batch",
                episodes_per_update=2, returns="reward_to_go", normalize=True, baseline="none", stop_reward=475.0,
                total_steps=1_000_000,
                activation="relu", critic_epochs=1, is_clip=0.0, normalize_obs=False, reuse_epochs=1, steps_per_update=0,
                target_kl=0.0, critic_normalize=False, kl_adaptive_lr=False),
           replaces=("seed002-batch-reinforce",)),
    # KL-stopped reuse of large minibatches: each epoch is a small step, so --target-kl can stop the batch
    # before the policy moves far (the one-step-per-episode update collapsed on seed 1). The sigma ceiling
    # lets the sampling policy come to rest (the +100 landing bonus); the KL-adaptive lr keeps the steps
    # safe as sigma falls.
    Preset("lunarlander-pg", "reinforce",
           "Gaussian PG on LunarLanderContinuous-v3 to reward_100 >= 200: GAE(0.98) from a Keras critic, KL-stopped "
           "minibatch reuse with a KL-adaptive lr, sigma capped by a ceiling falling to 0.3",
           "tfpg's own tuning (README, LunarLanderContinuous results, run V1)",
           dict(env_id="LunarLanderContinuous-v3", policy="gaussian", num_envs=16, vector_mode="sync", hidden=(64, 64),
                activation="tanh", normalize_obs=True, gamma=0.999, returns="lambda", gae_lambda=0.98,
                baseline="critic", critic_hidden=(64, 64), critic_lr=1e-3, critic_epochs=20, normalize=True,
                steps_per_update=8000, episodes_per_update=1, update="minibatch", minibatch_size=2000, reuse_epochs=10,
                target_kl=0.02, kl_adaptive_lr=True, is_clip=2.0, lr=3e-4, grad_clip=0.5, entropy_beta=0.0,
                std_ceiling=0.3, std_ceiling_steps=400_000, stop_reward=200.0, total_steps=2_000_000,
                eval_every=100_000, eval_episodes=10,
                critic_normalize=False), default=True),
    Preset("gaussian-pg-lunarlander", "reinforce",
           "the post's Gaussian REINFORCE: mean net 32-32 relu, free log-std, gamma 0.97, >= 3000 steps of complete "
           "episodes per update, scikit-learn linear baseline, standardised advantages, Adam 1e-3",
           "blog post \"Gaussian Policy Gradient (PG)\" on LunarLanderContinuous (TF1 + Keras + scikit-learn, "
           "Colab notebook); TF1 Adam defaults (eps 1e-8)",
           dict(env_id="LunarLanderContinuous-v3", policy="gaussian", num_envs=8, vector_mode="sync", hidden=(32, 32),
                activation="relu", normalize_obs=False, gamma=0.97, returns="reward_to_go", baseline="linear",
                normalize=True, steps_per_update=3000, episodes_per_update=1, update="batch", lr=1e-3, adam_eps=1e-8,
                entropy_beta=0.0, grad_clip=0.0, stop_reward=200.0, total_steps=1_500_000,
                critic_epochs=1, is_clip=0.0, reuse_epochs=1, target_kl=0.0, critic_normalize=False, kl_adaptive_lr=False),
           replaces=("seed004-lunarlander",)),
    Preset("book-pong-pg", "reinforce",
           "the book's PG on Pong: 32 envs, Nature CNN, Adam 1e-4 (eps 1e-3), entropy 0.01, batches of 128 "
           "transitions, 10-step returns, moving baseline over 1,000,000 transitions, grad clip 0.1, stop at 18",
           f"{BOOK}, script Chapter11/05_pong_pg.py, on ALE/Pong-v5 built as NoFrameskip-v4",
           dict(env_id="ALE/Pong-v5", num_envs=32, hidden=(512,), lr=1e-4, adam_eps=1e-3, gamma=0.99,
                entropy_beta=0.01, steps_per_update=128, returns="nstep", n_steps=10, baseline="moving",
                baseline_window=1_000_000, grad_clip=0.1, normalize=False, stop_reward=18.0, total_steps=10_000_000,
                activation="relu", critic_epochs=1, episodes_per_update=4, is_clip=0.0, normalize_obs=False, reuse_epochs=1,
                target_kl=0.0, update="batch", critic_normalize=False, kl_adaptive_lr=False),
           default=True),
)


def gradient_stats(grads) -> dict:
    """The book's gradient diagnostics.

    grad_l2  = mean over parameter tensors of sqrt(mean(g^2))  (RMS gradient per tensor)
    grad_max = max |g| over all parameters
    """
    rms = [tf.sqrt(tf.reduce_mean(tf.square(g))) for g in grads]
    return {"grad_l2": tf.add_n(rms) / len(rms),
            "grad_max": tf.reduce_max([tf.reduce_max(tf.abs(g)) for g in grads])}


def importance_weights(log_probs, old_log_probs, is_clip: float = 0.0):
    """w = pi/pi_old = exp(log pi - log pi_old), truncated at is_clip if > 0, without gradient."""
    ratio = tf.exp(log_probs - old_log_probs)
    if is_clip > 0:
        ratio = tf.minimum(ratio, is_clip)
    return tf.stop_gradient(ratio)


def policy_gradient_loss(policy, observations, actions, advantages, entropy_beta: float,
                         old_log_probs=None, is_clip: float = 0.0):
    """The surrogate whose gradient is the policy-gradient estimate.

    loss_policy  = -mean_t( w_t * A_t * log pi(a_t|s_t) ),  w_t = 1 if old_log_probs is None
    loss_entropy = -beta * mean_t H(pi(.|s_t))
    Returns (the distribution, {loss_policy, loss_entropy, loss_total, entropy, ratio_mean}).
    """
    dist = policy.distribution(observations)
    log_probs = dist.log_prob(actions)
    weights = tf.ones_like(log_probs) if old_log_probs is None else importance_weights(log_probs, old_log_probs, is_clip)
    loss_policy = -tf.reduce_mean(weights * advantages * log_probs)
    entropy = tf.reduce_mean(dist.entropy())
    loss_entropy = -entropy_beta * entropy
    return dist, {"loss_policy": loss_policy, "loss_entropy": loss_entropy,
                  "loss_total": loss_policy + loss_entropy, "entropy": entropy,
                  "ratio_mean": tf.reduce_mean(weights)}


def make_update(policy, optimizer, entropy_beta: float, grad_clip: float, is_clip: float = 0.0,
                log_std_optimizer=None):
    """One compiled step: surrogate loss, gradients, optional clipping, Adam, diagnostics.

    With `log_std_optimizer` a Gaussian policy's log-std takes its steps from that optimizer (its
    own learning rate) and every other variable from `optimizer`.
    """
    variables = policy.variables
    own = [log_std_optimizer is not None and v is getattr(policy, "log_std", None) for v in variables]
    vec = tf.TensorSpec([None], tf.float32)

    @tf.function(input_signature=[policy.obs_spec, policy.action_spec, vec, vec])
    def update(observations, actions, advantages, old_log_probs):
        params_before = policy.distribution_params(observations)
        with tf.GradientTape() as tape:
            _, losses = policy_gradient_loss(policy, observations, actions, advantages, entropy_beta,
                                             old_log_probs, is_clip)
        grads = tape.gradient(losses["loss_total"], variables)
        stats = gradient_stats(grads)
        if grad_clip > 0:
            grads, _ = tf.clip_by_global_norm(grads, grad_clip)
        # A NaN/inf step would destroy the weights and Adam's moments: skip it instead.
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(x)) for x in [losses["loss_total"], *grads]])

        def apply():
            optimizer.apply_gradients([(g, v) for g, v, o in zip(grads, variables, own) if not o])
            if any(own):
                log_std_optimizer.apply_gradients([(g, v) for g, v, o in zip(grads, variables, own) if o])
            return tf.constant(True)

        tf.cond(finite, apply, lambda: tf.constant(False))
        # KL(before || after) on the same batch, just after the step: how far one update moved the policy.
        before = policy.distribution_from_params(tf.nest.map_structure(tf.stop_gradient, params_before))
        after = policy.distribution(observations)
        kl = tf.reduce_mean(tfd.kl_divergence(before, after))
        # Sample estimate of KL(pi_old || pi_theta) (actions were drawn from pi_old): the drift
        # accumulated while a batch is reused.
        kl_old = tf.reduce_mean(old_log_probs - after.log_prob(actions))
        return {**losses, "kl": kl, "kl_old": kl_old, **stats, "finite": finite}

    # Traced here, before the clock starts, and called as a concrete function (no per-call
    # argument binding): tracing this graph takes ~0.5 s on this CPU.
    return update.get_concrete_function()


def make_flat_policy_gradient(policy):
    """g = grad_theta of -mean_t(A_t log pi(a_t|s_t)), flattened: one gradient estimate."""
    vec = tf.TensorSpec([None], tf.float32)

    @tf.function(input_signature=[policy.obs_spec, policy.action_spec, vec])
    def flat_gradient(observations, actions, advantages):
        with tf.GradientTape() as tape:
            _, losses = policy_gradient_loss(policy, observations, actions, advantages, 0.0)
        grads = tape.gradient(losses["loss_policy"], policy.variables)
        return tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)

    return flat_gradient


def gradient_variance(flat_gradient, observations, actions, advantages, groups) -> float:
    """Spread of independent gradient estimates: mean_e ||g_e - mean(g)||^2 over groups e
    (the episodes of the batch, or equal chunks of n-step transitions)."""
    grads = np.stack([flat_gradient(observations[s], actions[s], advantages[s]).numpy() for s in groups])
    return float(np.mean(np.sum((grads - grads.mean(0)) ** 2, axis=1)))


def sampled_kl_old(log_prob, observations, actions, old_log_probs) -> float:
    """KL(pi_old || pi_theta) ~= mean_t [log pi_old(a_t|s_t) - log pi_theta(a_t|s_t)], the actions drawn from pi_old."""
    return float(np.mean(old_log_probs - log_prob(observations, actions).numpy()))


def std_ceiling_log(config: ReinforceConfig, env_steps: int) -> float:
    """log sigma_max(t) = log_std_init + min(1, t / N) * (log std_ceiling - log_std_init), N = std_ceiling_steps:
    the ceiling falls log-linearly from the initial sigma to `std_ceiling`, then stays there."""
    progress = min(1.0, env_steps / config.std_ceiling_steps)
    return config.log_std_init + progress * (float(np.log(config.std_ceiling)) - config.log_std_init)


def _segments(lengths) -> list[slice]:
    ends = np.cumsum(lengths)
    return [slice(int(e - n), int(e)) for n, e in zip(lengths, ends)]


def build_policy(config: ReinforceConfig, spaces):
    """pi_theta: categorical or Gaussian by --policy and the action space, with --normalize-obs statistics of flat
    observations."""
    return make_policy(policy_kind(config.policy, spaces.action_space), spaces.observation_space, spaces.action_space,
                       config.hidden, config.seed, config.normalize_obs, config.activation, config.log_std_init)


def build_collector(config: ReinforceConfig, policy, stepper):
    """Complete episodes, or n-step transitions with --returns nstep, acting with `policy`."""
    act, to_env = policy.act_numpy, policy.env_action
    if config.returns == "nstep":
        return NStepCollector(stepper, act, config.n_steps, config.gamma, to_env=to_env)
    return EpisodeCollector(stepper, act, to_env=to_env)


# Action histograms cost a summary write per dimension: log them every this many updates.
HISTOGRAM_EVERY = 10


@dataclass
class Batch:
    """One update's data: steps with their return estimates G_t, and the groups (episodes, or
    chunks of n-step transitions) that give independent gradient estimates."""

    observations: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    groups: list[slice]


class Reinforce(Algorithm):
    """REINFORCE / vanilla PG: collect a batch, estimate returns, subtract a baseline, take the
    policy-gradient steps of the chosen update rule, refit the baseline."""

    name = "reinforce"
    config_class = ReinforceConfig
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)
    loss_metric = "loss_policy"
    presets = PRESETS
    distributable = True

    @classmethod
    def check_spaces(cls, config: ReinforceConfig, spaces) -> None:
        super().check_spaces(config, spaces)
        kind = policy_kind(config.policy, spaces.action_space)
        if kind != "gaussian" and (config.std_ceiling or config.log_std_lr):
            flag = "--std-ceiling" if config.std_ceiling else "--log-std-lr"
            raise ConfigError(f"{flag} applies to the gaussian policy (Box actions), but {config.env_id} gets the "
                              f"{kind} policy; drop {flag}")
        if is_image_space(spaces.observation_space) and config.baseline == "linear":
            raise ConfigError(f"--baseline linear fits flat observations; on {config.env_id}'s frames use "
                              "--baseline critic (a CNN), none, mean or moving")

    @classmethod
    def check_graph_backend(cls, config: ReinforceConfig) -> None:
        refusal = graph_refusal(config)
        if refusal:
            raise ConfigError(refusal)

    @classmethod
    def graph_learner(cls, config: ReinforceConfig, spaces, template, seeds: list[int]) -> GraphReinforce:
        """The learner `tfpg.training.graph_trainer` runs for --backend graph: K agents with seeds `seeds`."""
        return GraphReinforce(config, spaces, template, seeds)

    @classmethod
    def actor(cls, config: ReinforceConfig, spaces, stepper) -> PolicyActor:
        """A rollout worker: the policy and the collector, no optimizer, baseline or update graph."""
        policy = build_policy(config, spaces)
        return PolicyActor(policy, build_collector(config, policy, stepper))

    def __init__(self, config: ReinforceConfig, spaces, stepper):
        self.config = config
        self.stepper = stepper
        self.policy = build_policy(config, spaces)
        self._build_optimizers()
        self.log_prob = tf.function(lambda o, a: self.policy.distribution(o).log_prob(a),
                                    input_signature=[self.policy.obs_spec, self.policy.action_spec]
                                    ).get_concrete_function()
        self.flat_gradient = make_flat_policy_gradient(self.policy)
        self.baseline = make_baseline(config.baseline, spaces.observation_space,
                                      window=config.baseline_window, hidden=config.critic_hidden, lr=config.critic_lr,
                                      epochs=config.critic_epochs, features=self.policy.features,
                                      normalize_targets=config.critic_normalize, activation=config.critic_activation)
        self.shuffle_rng = np.random.default_rng(config.seed)
        self.updates = 0
        self.collector = build_collector(config, self.policy, stepper)
        # complete episodes, concatenated: one column whose running return restarts at each episode's end
        self.reward_normalizer = RewardNormalizer(1, config.gamma) if config.normalize_reward else None

    def _build_optimizers(self) -> None:
        config, policy = self.config, self.policy
        self.optimizer = keras.optimizers.Adam(learning_rate=config.lr, epsilon=config.adam_eps)
        self.log_std_optimizer = None
        if config.log_std_lr and hasattr(policy, "log_std"):
            self.log_std_optimizer = keras.optimizers.Adam(learning_rate=config.log_std_lr, epsilon=config.adam_eps)
            self.log_std_optimizer.build([policy.log_std])
        self.optimizer.build([v for v in policy.variables
                              if self.log_std_optimizer is None or v is not policy.log_std])
        self.update = make_update(policy, self.optimizer, config.entropy_beta, config.grad_clip, config.is_clip,
                                  self.log_std_optimizer)

    # --- checkpoint content: the policy (weights, log-std), Adam, the sampling RNG, the baseline, the
    # minibatch shuffle RNG and the exact (float64) observation statistics behind the policy's float32 copies.
    def trackables(self) -> dict:
        extra = {} if self.log_std_optimizer is None else {"log_std_optimizer": self.log_std_optimizer}
        return {**{f"policy_{k}": v for k, v in self.policy.trackables.items()}, "optimizer": self.optimizer,
                **extra, "policy_rng": self.policy.rng, **self.baseline.trackables()}

    def state(self) -> dict:
        state = {**self.baseline.state(), "shuffle_rng": rng_state_to_array(self.shuffle_rng),
                 "updates": np.int64(self.updates)}
        if self.policy.normalizer is not None:
            state.update({f"obs_norm/{k}": v for k, v in self.policy.normalizer.state().items()})
        if self.reward_normalizer is not None:
            state.update({f"reward_norm/{k}": v for k, v in self.reward_normalizer.state().items()})
        return state

    def load_state(self, state: dict) -> None:
        state = dict(state)
        rng_state_from_array(self.shuffle_rng, state.pop("shuffle_rng"))
        self.updates = int(state.pop("updates"))
        if self.policy.normalizer is not None:
            self.policy.normalizer.load({k[len("obs_norm/"):]: state.pop(k) for k in list(state)
                                         if k.startswith("obs_norm/")})
        if self.reward_normalizer is not None:
            self.reward_normalizer.load({k[len("reward_norm/"):]: state.pop(k) for k in list(state)
                                         if k.startswith("reward_norm/")})
        self.baseline.load(state)

    # --- one iteration ------------------------------------------------------------------------
    def iteration(self) -> Iteration:
        """1. collect and estimate G_t; 2. A_t = G_t - b(s_t); 3. gradient steps; 4. refit b, metrics."""
        batch = self.collect()
        values = self.baseline.values(batch.observations)   # fitted on earlier batches only
        advantages = self.advantages(batch.returns, values)
        metrics, finite = self.learn(batch, advantages)
        self.updates += 1
        metrics.update(self.after_update(batch, advantages))
        metrics.update(self.baseline.fit(batch.observations, batch.returns))
        if self.baseline.learned:
            metrics["explained_variance"] = explained_variance(values, batch.returns)
        if self.reward_normalizer is not None:
            metrics["reward_scale"] = self.reward_normalizer.scale
        metrics.update(baseline=float(np.mean(values)), batch_scales=float(np.mean(advantages)),
                       batch_scales_std=float(np.std(advantages)), returns_mean=float(np.mean(batch.returns)),
                       **self.policy.diagnostics())
        histograms = {}
        if self.updates % HISTOGRAM_EVERY == 1 and batch.actions.ndim == 2:
            env_actions = self.policy.env_action(batch.actions)
            histograms = {f"actions/dim_{d}": env_actions[:, d] for d in range(batch.actions.shape[1])}
        return Iteration(metrics, finite=finite, histograms=histograms)

    def collect(self) -> Batch:
        """A batch with G_t per step: n-step returns (bootstrapped by a learned baseline), or complete
        episodes with reward-to-go, total or TD(lambda) returns."""
        config, baseline = self.config, self.baseline
        if config.returns == "nstep":
            nstep = self.collector.collect(min_transitions=config.steps_per_update)
            self._update_normalizer(nstep.observations)
            returns = nstep.partial_returns
            if baseline.learned:
                returns = returns + nstep.bootstrap_discounts * nstep.bootstrap_mask * \
                    baseline.values(nstep.bootstrap_observations)
            chunks = np.array_split(np.arange(nstep.num_steps), min(16, nstep.num_steps))
            return self._batch(nstep.observations, nstep.actions, returns,
                               [slice(int(a[0]), int(a[-1]) + 1) for a in chunks])
        episodes = self.collector.collect(min_episodes=config.episodes_per_update, min_steps=config.steps_per_update)
        self._update_normalizer(episodes.observations)   # before any value is predicted on this batch
        rewards = self._scaled_rewards(episodes)
        if config.returns == "total":
            returns = returns_lib.total_return(rewards, episodes.lengths, config.gamma)
        else:
            bootstrap = None
            if baseline.learned:  # a time-limit end is not a terminal state: add gamma^(T-t) V(s_T)
                bootstrap = np.where(episodes.terminated, 0.0, baseline.values(episodes.final_observations))
            if config.returns == "lambda":
                returns = returns_lib.lambda_returns(rewards, baseline.values(episodes.observations),
                                                     episodes.lengths, config.gamma, config.gae_lambda, bootstrap)
            else:
                returns = returns_lib.reward_to_go(rewards, episodes.lengths, config.gamma, bootstrap)
        return self._batch(episodes.observations, episodes.actions, returns, _segments(episodes.lengths))

    def _scaled_rewards(self, episodes) -> np.ndarray:
        """The batch's rewards, with --normalize-reward divided by the running std of R (`RewardNormalizer`), the
        episodes laid end to end in one column: R restarts after each episode's last step."""
        if self.reward_normalizer is None:
            return episodes.rewards
        ends = np.zeros((episodes.num_steps, 1), bool)
        ends[np.cumsum(episodes.lengths) - 1] = True
        return self.reward_normalizer(episodes.rewards[:, None], ends, np.ones_like(ends))[:, 0]

    def _update_normalizer(self, observations: np.ndarray) -> None:
        if self.policy.normalizer is not None:
            self.policy.normalizer.update(observations)

    def _batch(self, observations, actions, returns, groups) -> Batch:
        return Batch(observations.astype(self.policy.obs_spec.dtype.as_numpy_dtype),   # frames stay uint8
                     actions.astype(self.policy.action_spec.dtype.as_numpy_dtype), returns, groups)

    def advantages(self, returns: np.ndarray, values: np.ndarray) -> np.ndarray:
        """A_t = G_t - b(s_t), standardised per batch with --normalize."""
        advantages = (returns - values).astype(np.float32)
        return returns_lib.standardize(advantages) if self.config.normalize else advantages

    def _slices(self, batch: Batch) -> list:
        """The parts of the batch that get one gradient step each, by --update."""
        n = len(batch.actions)
        if self.config.update == "minibatch":   # a fresh shuffle every epoch
            order = self.shuffle_rng.permutation(n)
            return [order[i:i + self.config.minibatch_size] for i in range(0, n, self.config.minibatch_size)]
        return {"batch": [slice(None)], "episode": batch.groups,
                "step": [slice(t, t + 1) for t in range(n)]}[self.config.update]

    def learn(self, batch: Batch, advantages: np.ndarray) -> tuple[dict, list[bool]]:
        """Gradient steps by the update rule; --reuse-epochs K > 1 reuses the batch with IS weights,
        stopped early once the sampled KL(pi_old || pi_theta) on the batch exceeds --target-kl."""
        config = self.config
        obs, actions = batch.observations, batch.actions
        self._old_log_probs = old_log_probs = self.log_prob(obs, actions).numpy()
        self._kl_old = None   # sampled KL(pi_old || pi_theta) on the batch after the last epoch, once measured
        finite: list[bool] = []
        for epoch in range(config.reuse_epochs):
            steps = [self.update(obs[s], actions[s], advantages[s], old_log_probs[s]) for s in self._slices(batch)]
            finite += [bool(step.pop("finite")) for step in steps]
            metrics = {k: float(np.mean([m[k] for m in steps])) for k in steps[0]}
            if config.reuse_epochs > 1:
                metrics[f"reuse/kl_epoch_{epoch + 1}"] = metrics["kl"]
                if config.target_kl > 0:
                    self._kl_old = sampled_kl_old(self.log_prob, obs, actions, old_log_probs)
                    if self._kl_old > config.target_kl:
                        break
        metrics["reuse/epochs"] = epoch + 1
        return metrics, finite

    def after_update(self, batch: Batch, advantages: np.ndarray) -> dict:
        """The KL-adaptive lr, the sigma ceiling, and (every --grad-var-every updates) the gradient variance."""
        config, metrics = self.config, {}
        if config.kl_adaptive_lr:
            if self._kl_old is None:
                self._kl_old = sampled_kl_old(self.log_prob, batch.observations, batch.actions, self._old_log_probs)
            metrics["lr"] = adapt_learning_rate(self.optimizer, self._kl_old, config.target_kl, config.lr)
        if config.std_ceiling:
            # Exploration noise the policy gradient does not shrink by itself (LunarLander's side engines
            # fire unless |a_1| < 0.5, so sigma ~ 1 never lets the lander come to rest): cap it.
            self.policy.cap_log_std(std_ceiling_log(config, self.stepper.env_steps))
        if config.grad_var_every and self.updates % config.grad_var_every == 0 and len(batch.groups) > 1:
            metrics["grad_var"] = gradient_variance(self.flat_gradient, batch.observations, batch.actions,
                                                    advantages, batch.groups)
        return metrics


# --- the graph backend (--backend graph): fixed-horizon rollouts of K stacked agents -------------------------
def graph_refusal(config: ReinforceConfig) -> str | None:
    """The options `--backend graph` does not implement for REINFORCE, as a one-line refusal; None if all are.

    Implemented: --returns reward_to_go / lambda, --baseline none / critic, --update batch, --normalize,
    --entropy-beta, --grad-clip, --critic-*, both policies. The batch is --num-envs x --rollout-steps
    transitions (--episodes-per-update and --steps-per-update are for --backend gym)."""
    from tfpg.backends.graph.stacked import refusal_line

    # all of them in one line: the fallback defaults (no preset) trip several at once
    return refusal_line("reinforce", (
        (config.returns not in ("reward_to_go", "lambda"), f"--returns {config.returns}", "--returns reward_to_go or lambda"),
        (config.baseline not in ("none", "critic"), f"--baseline {config.baseline}", "--baseline none or critic"),
        (config.update != "batch", f"--update {config.update}", "--update batch"),
        (config.reuse_epochs != 1, "--reuse-epochs", "--reuse-epochs 1"),
        (config.normalize_obs, "--normalize-obs", "--normalize-obs false"),
        (config.normalize_reward, "--normalize-reward", "--normalize-reward false"),
        (bool(config.std_ceiling), "--std-ceiling", "--std-ceiling 0"),
        (bool(config.log_std_lr), "--log-std-lr", "--log-std-lr 0"),
        (bool(config.target_kl) or config.kl_adaptive_lr, "--target-kl / --kl-adaptive-lr",
         "--target-kl 0 --kl-adaptive-lr false"),
        (bool(config.grad_var_every), "--grad-var-every", "--grad-var-every 0"),
    ))


def per_agent_gradient_stats(grads) -> dict:
    """gradient_stats for each agent k of stacked gradients g_v [K, ...]: grad_l2 [K], grad_max [K], and the
    global norm ||g[k]||_2 [K] that --grad-clip bounds."""
    axes = [list(range(1, g.shape.rank)) for g in grads]
    rms = [tf.sqrt(tf.reduce_mean(tf.square(g), axis=a)) for g, a in zip(grads, axes)]
    return {"grad_l2": tf.add_n(rms) / len(rms),
            "grad_max": tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(g), axis=a) for g, a in zip(grads, axes)]), 0),
            "norm": tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g), axis=a) for g, a in zip(grads, axes)]))}


def clip_per_agent(grads, norms, clip: float):
    """tf.clip_by_global_norm for each agent: g[k] * clip / max(||g[k]||, clip)."""
    scale = clip / tf.maximum(norms, clip)
    return [g * tf.reshape(scale, [-1] + [1] * (g.shape.rank - 1)) for g in grads]


class GraphReinforce:
    """The REINFORCE learner of the graph backend, for K agents with stacked weights (`tfpg.backends.graph.stacked`).

    On a rollout [T, K, N]: V from the critic (fitted on earlier batches; 0 without one), then
        (A, G) = fixed_horizon_advantages(r, V, ..., lambda)   lambda = 1 for reward_to_go, --gae-lambda for lambda
    an episode still running at the end of the rollout bootstraps with gamma^j V(s_T) (nothing without a
    critic: its reward-to-go is cut there), a time-limit end with V(final obs). A = G - V, standardised per
    agent with --normalize; one Adam step on sum_k loss_total_k (each agent's gradient is its own), clipped
    per agent; then --critic-epochs steps of 0.5 mean (V - G)^2.
    """

    def __init__(self, config: ReinforceConfig, spaces, template, seeds: list[int]):
        from tfpg.backends.graph.stacked import StackedMLP, StackedPolicy
        from tfpg.models.networks import mlp, torso_for

        self.config = config
        self.rollout_steps = config.rollout_steps   # T of the rollout the trainer hands to learn()
        models, critics = [], []
        for seed in seeds:   # the models a --backend gym run with this seed starts from, in the same order
            keras.utils.set_random_seed(seed)
            models.append(torso_for(spaces.observation_space, config.hidden, template.output_dim(spaces.action_space),
                                    name="policy", output_scale=0.01, activation=config.activation))
            if config.baseline == "critic":
                critics.append(mlp(int(spaces.observation_space.shape[0]), config.critic_hidden, 1, name="critic",
                                   activation=config.critic_activation))
        log_stds = None if template.kind != "gaussian" else [template.log_std.numpy()] * len(seeds)
        self.policy = StackedPolicy(template, models, log_stds)
        self.optimizer = keras.optimizers.Adam(learning_rate=config.lr, epsilon=config.adam_eps)
        self.optimizer.build(self.policy.variables)
        self.critic = StackedMLP(critics, "critic") if critics else None
        if self.critic is not None:
            self.critic_optimizer = keras.optimizers.Adam(learning_rate=config.critic_lr)
            self.critic_optimizer.build(self.critic.variables)

    @property
    def trackables(self) -> dict:
        extra = {} if self.critic is None else {"critic": self.critic.variables,
                                                 "critic_optimizer": self.critic_optimizer}
        return {"policy": self.policy.variables, "optimizer": self.optimizer, **extra}

    def values(self, obs):
        """V(s) for time-major observations [T, K, N, obs] (or [K, N, obs]); zeros without a critic."""
        if self.critic is None:
            return tf.zeros(tf.shape(obs)[:-1])
        if obs.shape.rank == 3:
            return self.critic(obs)[..., 0]
        t, k, n = tf.unstack(tf.shape(obs)[:3])
        flat = tf.reshape(tf.transpose(obs, [1, 0, 2, 3]), [k, t * n, -1])
        return tf.transpose(tf.reshape(self.critic(flat)[..., 0], [k, t, n]), [1, 0, 2])

    def learn(self, rollout) -> tuple[dict, tf.Tensor]:
        """One update of every agent on its rollout: ({metric: [K]}, whether the step was applied)."""
        from tfpg.backends.graph.stacked import agent_major, fixed_horizon_advantages

        config = self.config
        values = self.values(rollout.obs)
        lam = config.gae_lambda if config.returns == "lambda" else 1.0
        advantages, returns = fixed_horizon_advantages(
            rollout.rewards, values, rollout.terminated, rollout.truncated, self.values(rollout.final_obs),
            self.values(rollout.last_obs), config.gamma, lam)
        advantages, returns, values = agent_major(advantages), agent_major(returns), agent_major(values)
        if config.normalize:
            mean, var = tf.nn.moments(advantages, axes=[1], keepdims=True)
            advantages = (advantages - mean) / (tf.sqrt(var) + 1e-8)
        obs, actions = agent_major(rollout.obs), agent_major(rollout.actions)
        metrics, finite = self._policy_step(obs, actions, advantages)
        metrics.update(baseline=tf.reduce_mean(values, 1), batch_scales=tf.reduce_mean(advantages, 1),
                       batch_scales_std=tf.math.reduce_std(advantages, 1), returns_mean=tf.reduce_mean(returns, 1))
        metrics["reuse/epochs"] = tf.ones_like(metrics["entropy"])   # as --backend gym logs it: one pass
        if self.critic is not None:
            metrics.update(self._critic_steps(obs, returns, values))
        return metrics, finite

    def _policy_step(self, obs, actions, advantages):
        """One Adam step of every agent on loss_total_k = -mean(A log pi) - beta H, the gradients agent by agent
        (`per_agent_gradients`); then, with the new weights, KL(before || after) and kl_old per agent."""
        from tfpg.backends.graph.stacked import one_agent, per_agent_gradients

        policy, config = self.policy, self.config
        variables = policy.variables

        def agent_loss(weights, batch):   # one agent's [B, ...], or [1, B, ...] (graph_backend.one_agent)
            obs_k, actions_k, advantages_k = batch
            params = policy.params(obs_k, weights)
            dist = policy.distribution(params)
            log_probs = dist.log_prob(actions_k)
            entropy = tf.reduce_mean(dist.entropy(), -1)
            loss_policy = -tf.reduce_mean(advantages_k * log_probs, -1)
            loss_entropy = -config.entropy_beta * entropy
            return loss_policy + loss_entropy, {"loss_policy": loss_policy, "loss_entropy": loss_entropy,
                                                "entropy": entropy, "log_probs": log_probs, "params": params}

        aux_dtypes = {name: tf.float32 for name in ("loss_policy", "loss_entropy", "entropy", "log_probs")}
        aux_dtypes["params"] = {name: tf.float32 for name in policy.param_names}
        grads, loss_total, aux = per_agent_gradients(agent_loss, variables, (obs, actions, advantages), aux_dtypes)
        stats = per_agent_gradient_stats(grads)
        if config.grad_clip > 0:
            grads = clip_per_agent(grads, stats["norm"], config.grad_clip)
        # A NaN/inf step would destroy the weights and Adam's moments: skip it (for all agents: one Adam).
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(x)) for x in [loss_total, *grads]])

        def apply():
            self.optimizer.apply_gradients(zip(grads, variables))
            return tf.constant(True)

        finite = tf.cond(finite, apply, lambda: tf.constant(False))

        def agent_kl(args):
            weights, before, obs_k, actions_k, log_probs_k = args
            after = policy.distribution(policy.params(obs_k, weights))
            return tf.stack([tf.reduce_mean(tfd.kl_divergence(policy.distribution(before), after), -1),
                             tf.reduce_mean(log_probs_k - after.log_prob(actions_k), -1)], -1)

        kl = tf.map_fn(one_agent(agent_kl, variables[0].shape[0]),
                       ([v.value() for v in variables], aux["params"], obs, actions, aux["log_probs"]),
                       fn_output_signature=tf.float32)
        entropy = aux["entropy"]
        metrics = {"loss_policy": aux["loss_policy"], "loss_entropy": aux["loss_entropy"], "loss_total": loss_total,
                   "entropy": entropy, "kl": kl[:, 0], "kl_old": kl[:, 1], "ratio_mean": tf.ones_like(entropy),
                   "grad_l2": stats["grad_l2"], "grad_max": stats["grad_max"]}
        if policy.log_std is not None:
            metrics.update({f"policy/std_{d}": tf.exp(policy.log_std[:, d]) for d in range(policy.log_std.shape[1])})
        return metrics, finite

    def _critic_steps(self, obs, returns, values) -> dict:
        """--critic-epochs Adam steps on 0.5 mean_t (V(s_t) - G_t)^2 per agent; the loss of the first, and the
        explained variance 1 - Var(G - V) / Var(G) of the values used for this batch."""
        losses = []
        for _ in range(self.config.critic_epochs):
            with tf.GradientTape() as tape:
                loss = 0.5 * tf.reduce_mean(tf.square(self.critic(obs)[..., 0] - returns), 1)
                summed = tf.reduce_sum(loss)
            grads = tape.gradient(summed, self.critic.variables)
            self.critic_optimizer.apply_gradients(zip(grads, self.critic.variables))
            losses.append(loss)
        var_returns = tf.math.reduce_variance(returns, 1)
        explained = 1.0 - tf.math.reduce_variance(returns - values, 1) / var_returns
        return {"value_loss": losses[0],
                "explained_variance": tf.where(var_returns > 0, explained, float("nan"))}
