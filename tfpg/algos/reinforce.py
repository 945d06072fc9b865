"""REINFORCE (Williams 1992): Monte-Carlo policy gradient on batches of complete episodes.

    grad J(theta) ~= 1/sum_i T_i  sum_i sum_t  grad log pi_theta(a_t|s_t) * G_t

implemented as the surrogate loss

    loss_policy  = -mean_t( G_t * log pi(a_t|s_t) )
    loss_entropy = -beta * mean_t H(pi(.|s_t))
    loss_total   = loss_policy + loss_entropy

over all steps of the batch (the batch-episodic update normalised by the total step count).
G_t is the reward-to-go sum_{k>=t} gamma^(k-t) r_k (or the whole-episode return G_0), optionally
standardised over the batch.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg import envs as envs_lib
from tfpg import returns as returns_lib
from tfpg.config import ReinforceConfig
from tfpg.policies import make_policy
from tfpg.rollout import EpisodeCollector
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


def policy_gradient_loss(policy, observations, actions, weights, entropy_beta: float):
    """The surrogate whose gradient is the policy-gradient estimate.

    loss_policy  = -mean_t( w_t * log pi(a_t|s_t) )       (w_t: returns or advantages)
    loss_entropy = -beta * mean_t H(pi(.|s_t))
    Returns (the distribution, {loss_policy, loss_entropy, loss_total, entropy}).
    """
    dist = policy.distribution(observations)
    log_probs = dist.log_prob(actions)
    loss_policy = -tf.reduce_mean(weights * log_probs)
    entropy = tf.reduce_mean(dist.entropy())
    loss_entropy = -entropy_beta * entropy
    return dist, {"loss_policy": loss_policy, "loss_entropy": loss_entropy,
                  "loss_total": loss_policy + loss_entropy, "entropy": entropy}


def make_update(policy, optimizer, entropy_beta: float, grad_clip: float):
    """One compiled step: surrogate loss, gradients, optional clipping, Adam, diagnostics."""
    variables = policy.variables

    @tf.function(input_signature=[policy.obs_spec, tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.float32)])
    def update(observations, actions, weights):
        with tf.GradientTape() as tape:
            dist, losses = policy_gradient_loss(policy, observations, actions, weights, entropy_beta)
        grads = tape.gradient(losses["loss_total"], variables)
        stats = gradient_stats(grads)
        if grad_clip > 0:
            grads, _ = tf.clip_by_global_norm(grads, grad_clip)
        optimizer.apply_gradients(zip(grads, variables))
        # KL(old || new) on the same batch, just after the step: how far one update moved the policy.
        old_dist = tfd.Categorical(logits=tf.stop_gradient(dist.logits_parameter()))
        kl = tf.reduce_mean(tfd.kl_divergence(old_dist, policy.distribution(observations)))
        return {**losses, "kl": kl, **stats}

    return update


def train(config: ReinforceConfig, run_dir: str, export_path: str | None) -> RunResult:
    keras.utils.set_random_seed(config.seed)
    spaces = envs_lib.env_spaces(config.env_id)
    policy = make_policy(spaces.observation_space, spaces.action_space, config.hidden, config.seed)
    optimizer = keras.optimizers.Adam(learning_rate=config.lr, epsilon=config.adam_eps)
    optimizer.build(policy.variables)
    update = make_update(policy, optimizer, config.entropy_beta, config.grad_clip)

    envs = envs_lib.make_vec_env(config.env_id, config.num_envs, config.seed, config.vector_mode)
    run = Run(config, run_dir, export_path, greedy_act=policy.greedy_numpy)
    collector = EpisodeCollector(envs, policy.act_numpy, on_episode=run.episode_done)
    run.start_clock()
    try:
        while not run.should_stop():
            batch = collector.collect(min_episodes=config.episodes_per_update)
            if config.returns == "total":
                returns = returns_lib.total_return(batch.rewards, batch.lengths, config.gamma)
            else:
                returns = returns_lib.reward_to_go(batch.rewards, batch.lengths, config.gamma)
            weights = returns_lib.standardize(returns) if config.normalize else returns
            metrics = update(batch.observations.astype(np.float32), batch.actions.astype(np.int32), weights)
            metrics = {k: float(v) for k, v in metrics.items()}
            metrics.update(batch_scales=float(np.mean(weights)), batch_scales_std=float(np.std(weights)))
            run.log(collector.env_steps, metrics)
            run.after_steps(collector.env_steps)
    finally:
        envs.close()
    return run.finish(policy, spaces.observation_space, spaces.action_space)
