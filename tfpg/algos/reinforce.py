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
update uses it.
"""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg import envs as envs_lib
from tfpg import returns as returns_lib
from tfpg.baselines import explained_variance, make_baseline
from tfpg.checkpoint import rng_state_from_array, rng_state_to_array
from tfpg.config import ReinforceConfig
from tfpg.algos import policy_kind
from tfpg.policies import make_policy
from tfpg.rollout import EpisodeCollector, NStepCollector
from tfpg.run import Run, RunResult

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


def adapt_learning_rate(optimizer, kl: float, target_kl: float, max_lr: float) -> float:
    """KL-adaptive step size: lr <- lr / 1.5 if the batch's KL(pi_old || pi) > 2 target_kl,
    lr <- min(1.5 lr, max_lr) if it is < target_kl / 2; returns the new lr.

    The KL one Adam step causes grows as sigma shrinks (KL ~ (d mu / sigma)^2), so a fixed lr
    that is safe at sigma = 1 overshoots at sigma = 0.3; this keeps each batch's step near the target."""
    lr = float(optimizer.learning_rate.numpy())
    if kl > 2 * target_kl:
        lr = max(lr / 1.5, 1e-6)
    elif kl < target_kl / 2:
        lr = min(lr * 1.5, max_lr)
    optimizer.learning_rate.assign(lr)
    return lr


def std_ceiling_log(config: ReinforceConfig, env_steps: int) -> float:
    """log sigma_max(t) = log_std_init + min(1, t / N) * (log std_ceiling - log_std_init), N = std_ceiling_steps:
    the ceiling falls log-linearly from the initial sigma to `std_ceiling`, then stays there."""
    progress = min(1.0, env_steps / config.std_ceiling_steps)
    return config.log_std_init + progress * (float(np.log(config.std_ceiling)) - config.log_std_init)


def _segments(lengths) -> list[slice]:
    ends = np.cumsum(lengths)
    return [slice(int(e - n), int(e)) for n, e in zip(lengths, ends)]


# Action histograms cost a summary write per dimension: log them every this many updates.
HISTOGRAM_EVERY = 10


def train(config: ReinforceConfig, run_dir: str, export_path: str | None, resume: bool = False) -> RunResult:
    keras.utils.set_random_seed(config.seed)
    spaces = envs_lib.env_spaces(config.env_id)
    policy = make_policy(policy_kind(config.policy, spaces.action_space), spaces.observation_space,
                         spaces.action_space, config.hidden, config.seed, config.normalize_obs, config.activation,
                         config.log_std_init)
    optimizer = keras.optimizers.Adam(learning_rate=config.lr, epsilon=config.adam_eps)
    log_std_optimizer = None
    if config.log_std_lr and hasattr(policy, "log_std"):
        log_std_optimizer = keras.optimizers.Adam(learning_rate=config.log_std_lr, epsilon=config.adam_eps)
        log_std_optimizer.build([policy.log_std])
    optimizer.build([v for v in policy.variables if log_std_optimizer is None or v is not policy.log_std])
    update = make_update(policy, optimizer, config.entropy_beta, config.grad_clip, config.is_clip, log_std_optimizer)
    log_prob = tf.function(lambda o, a: policy.distribution(o).log_prob(a),
                           input_signature=[policy.obs_spec, policy.action_spec]).get_concrete_function()
    flat_gradient = make_flat_policy_gradient(policy)
    obs_dim = int(np.prod(spaces.observation_space.shape))
    baseline = make_baseline(config.baseline, obs_dim, window=config.baseline_window, hidden=config.critic_hidden,
                             lr=config.critic_lr, epochs=config.critic_epochs, features=policy.features)
    action_dtype = policy.action_spec.dtype.as_numpy_dtype

    envs = envs_lib.make_train_envs(config)
    shuffle_rng = np.random.default_rng(config.seed)
    run = Run(config, run_dir, export_path, policy=policy, resuming=resume)

    # Checkpoint content besides the run's counters: the policy (weights, log-std), Adam, the
    # sampling RNG, the baseline, the minibatch shuffle RNG and the exact (float64) observation
    # statistics behind the policy's float32 copies.
    def get_state() -> dict:
        state = {**baseline.state(), "shuffle_rng": rng_state_to_array(shuffle_rng)}
        if policy.normalizer is not None:
            state.update({f"obs_norm/{k}": v for k, v in policy.normalizer.state().items()})
        return state

    def set_state(state: dict) -> None:
        rng_state_from_array(shuffle_rng, state.pop("shuffle_rng"))
        if policy.normalizer is not None:
            policy.normalizer.load({k[len("obs_norm/"):]: state.pop(k) for k in list(state) if k.startswith("obs_norm/")})
        baseline.load(state)

    extra_optimizer = {} if log_std_optimizer is None else {"log_std_optimizer": log_std_optimizer}
    run.attach({**{f"policy_{k}": v for k, v in policy.trackables.items()}, "optimizer": optimizer, **extra_optimizer,
                "policy_rng": policy.rng, **baseline.trackables()}, get_state=get_state, set_state=set_state)
    if config.returns == "nstep":
        collector = NStepCollector(envs, policy.act_numpy, config.n_steps, config.gamma, on_episode=run.episode_done,
                                   to_env=policy.env_action)
    else:
        collector = EpisodeCollector(envs, policy.act_numpy, on_episode=run.episode_done, to_env=policy.env_action)
    if resume:
        collector.restart(run.resume())
        collector.env_steps = run.env_steps
    poisoned = {int(u) for u in os.environ.get("TFPG_TEST_POISON_UPDATES", "").split(",") if u}  # test hook
    run.start_clock()
    try:
        while not run.should_stop():
            # 1. Collect a batch and estimate G_t for each of its steps.
            if config.returns == "nstep":
                batch = collector.collect(min_transitions=config.steps_per_update)
                if policy.normalizer is not None:
                    policy.normalizer.update(batch.observations)
                returns = batch.partial_returns
                if baseline.learned:
                    returns = returns + batch.bootstrap_discounts * batch.bootstrap_mask * \
                        baseline.values(batch.bootstrap_observations)
                n_groups = min(16, batch.num_steps)
                groups = [slice(int(a[0]), int(a[-1]) + 1) for a in np.array_split(np.arange(batch.num_steps), n_groups)]
            else:
                batch = collector.collect(min_episodes=config.episodes_per_update, min_steps=config.steps_per_update)
                if policy.normalizer is not None:  # before any value is predicted on this batch
                    policy.normalizer.update(batch.observations)
                if config.returns == "total":
                    returns = returns_lib.total_return(batch.rewards, batch.lengths, config.gamma)
                else:
                    bootstrap = None
                    if baseline.learned:  # a time-limit end is not a terminal state: add gamma^(T-t) V(s_T)
                        bootstrap = np.where(batch.terminated, 0.0, baseline.values(batch.final_observations))
                    if config.returns == "lambda":
                        returns = returns_lib.lambda_returns(batch.rewards, baseline.values(batch.observations),
                                                             batch.lengths, config.gamma, config.gae_lambda, bootstrap)
                    else:
                        returns = returns_lib.reward_to_go(batch.rewards, batch.lengths, config.gamma, bootstrap)
                groups = _segments(batch.lengths)
            observations = batch.observations.astype(policy.obs_spec.dtype.as_numpy_dtype)   # frames stay uint8
            actions = batch.actions.astype(action_dtype)

            # 2. Advantages A_t = G_t - b(s_t), the baseline fitted on earlier batches only.
            values = baseline.values(observations)
            advantages = (returns - values).astype(np.float32)
            if config.normalize:
                advantages = returns_lib.standardize(advantages)

            if run.updates in poisoned:
                advantages = np.full_like(advantages, np.nan)

            # 3. Gradient steps by the chosen update rule; K > 1 reuses the batch with IS weights.
            old_log_probs = log_prob(observations, actions).numpy()
            metrics: dict[str, float] = {}
            kl_old = None   # sampled KL(pi_old || pi_theta) on the whole batch after the last epoch, once measured
            for epoch in range(config.reuse_epochs):
                if config.update == "minibatch":   # a fresh shuffle every epoch
                    order = shuffle_rng.permutation(len(actions))
                    slices = [order[i:i + config.minibatch_size] for i in range(0, len(order), config.minibatch_size)]
                else:
                    slices = {"batch": [slice(None)], "episode": groups,
                              "step": [slice(t, t + 1) for t in range(len(actions))]}[config.update]
                steps = [update(observations[s], actions[s], advantages[s], old_log_probs[s]) for s in slices]
                for step in steps:
                    run.update_finite(bool(step.pop("finite")))
                metrics = {k: float(np.mean([m[k] for m in steps])) for k in steps[0]}
                if config.reuse_epochs > 1:
                    metrics[f"reuse/kl_epoch_{epoch + 1}"] = metrics["kl"]
                    if config.target_kl > 0:  # early stop: sampled KL(pi_old || pi_theta) on the whole batch
                        kl_old = sampled_kl_old(log_prob, observations, actions, old_log_probs)
                        if kl_old > config.target_kl:
                            break
            metrics["reuse/epochs"] = epoch + 1
            if config.kl_adaptive_lr:
                if kl_old is None:
                    kl_old = sampled_kl_old(log_prob, observations, actions, old_log_probs)
                metrics["lr"] = adapt_learning_rate(optimizer, kl_old, config.target_kl, config.lr)
            if config.std_ceiling:
                # Exploration noise the policy gradient does not shrink by itself (LunarLander's side engines
                # fire unless |a_1| < 0.5, so sigma ~ 1 never lets the lander come to rest): cap it.
                policy.cap_log_std(std_ceiling_log(config, collector.env_steps))
            num_updates = run.updates + 1   # counting this one
            if config.grad_var_every and num_updates % config.grad_var_every == 0 and len(groups) > 1:
                metrics["grad_var"] = gradient_variance(flat_gradient, observations, actions, advantages, groups)

            # 4. Refit the baseline on this batch, then log.
            metrics.update(baseline.fit(observations, returns))
            if baseline.learned:
                metrics["explained_variance"] = explained_variance(values, returns)
            metrics.update(baseline=float(np.mean(values)), batch_scales=float(np.mean(advantages)),
                           batch_scales_std=float(np.std(advantages)), returns_mean=float(np.mean(returns)),
                           **policy.diagnostics())
            run.log(collector.env_steps, metrics)
            if num_updates % HISTOGRAM_EVERY == 1 and actions.ndim == 2:
                env_actions = policy.env_action(actions)
                run.logger.histograms(collector.env_steps, {f"actions/dim_{d}": env_actions[:, d]
                                                            for d in range(actions.shape[1])})
            run.after_steps(collector.env_steps)
            reseed = run.after_update()
            if reseed is not None:
                collector.restart(reseed)
    finally:
        envs.close()
    return run.finish(policy, spaces.observation_space, spaces.action_space)
