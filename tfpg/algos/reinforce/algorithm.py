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

from tfpg.algos.base import Algorithm, Iteration
from tfpg.algos.capabilities import Distributable, GraphTrainable, PolicyActor
from tfpg.algos.reinforce.config import ReinforceConfig
from tfpg.algos.reinforce.graph import GraphReinforce, graph_refusal
from tfpg.algos.reinforce.presets import PRESETS
from tfpg.core.checkpoint import rng_state_from_array, rng_state_to_array
from tfpg.core.errors import ConfigError
from tfpg.experience.collectors import EpisodeCollector, NStepCollector
from tfpg.maths import returns as returns_lib
from tfpg.maths.schedules import adapt_learning_rate
from tfpg.models.baselines import explained_variance, make_baseline
from tfpg.models.networks import is_image_space
from tfpg.models.normalization import RewardNormalizer
from tfpg.models.policies import make_policy, policy_kind

tfd = tfp.distributions


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

    # Traced here, before the clock starts (tracing this graph takes about half a second), and called as a
    # concrete function (no per-call argument binding).
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


class Reinforce(Algorithm, Distributable, GraphTrainable):
    """REINFORCE / vanilla PG: collect a batch, estimate returns, subtract a baseline, take the
    policy-gradient steps of the chosen update rule, refit the baseline."""

    name = "reinforce"
    config_class = ReinforceConfig
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)
    loss_metric = "loss_policy"
    presets = PRESETS

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
            # the policy gradient barely shrinks sigma by itself: docs/journal/2026-11-25-lunarlander-sigma-ceiling.md
            self.policy.cap_log_std(std_ceiling_log(config, self.stepper.env_steps))
        if config.grad_var_every and self.updates % config.grad_var_every == 0 and len(batch.groups) > 1:
            metrics["grad_var"] = gradient_variance(self.flat_gradient, batch.observations, batch.actions,
                                                    advantages, batch.groups)
        return metrics

