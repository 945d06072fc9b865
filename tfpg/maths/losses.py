"""Named parts of the actor-critic losses (PPO, A2C), each a function of tensors only.

    loss_total = clipped_surrogate_loss + vf_coef * value_estimation_loss + ent_coef * entropy_loss

The weighting is the algorithm's; these functions only compute their part. `axis` is the axis of
the mean over t (None: every axis); the graph backend's K stacked agents pass axis=-1 on [K, B]
tensors and get one loss per agent [K]. Conventions:
  - the value loss is the plain mean squared error, without a factor 1/2 (Stable-Baselines3's
    convention, so the rl-baselines3-zoo's vf_coef means the same here);
  - approx_kl is the (r - 1) - log r estimator of KL(pi_old || pi_theta) (Schulman's "k3":
    unbiased for actions drawn from pi_old, and >= 0 for every sample).
"""
from __future__ import annotations

import tensorflow as tf


def clipped_surrogate_loss(log_probs, old_log_probs, advantages, clip_range, axis=None):
    """PPO's clipped surrogate, as a loss to minimise:

        r_t  = pi_theta(a_t|s_t) / pi_old(a_t|s_t) = exp(log_probs - old_log_probs)
        loss = -mean_t min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t),   eps = clip_range

    The min takes the pessimistic term, so a ratio that has moved past 1 + eps (A > 0) or below
    1 - eps (A < 0) has zero gradient; moves that make the objective worse are never clipped.
    Returns (loss, {"clip_fraction": mean_t [|r_t - 1| > eps],
                    "approx_kl":     mean_t [(r_t - 1) - log r_t]}), the diagnostics without gradient.
    """
    log_ratio = log_probs - old_log_probs
    ratio = tf.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = tf.clip_by_value(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages
    loss = -tf.reduce_mean(tf.minimum(unclipped, clipped), axis)
    ratio, log_ratio = tf.stop_gradient(ratio), tf.stop_gradient(log_ratio)
    clip_fraction = tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip_range, loss.dtype), axis)
    approx_kl = tf.reduce_mean((ratio - 1.0) - log_ratio, axis)
    return loss, {"clip_fraction": clip_fraction, "approx_kl": approx_kl}


def value_estimation_loss(values, returns, old_values=None, clip_range_vf: float | None = None, axis=None):
    """Critic loss, mean squared error without the factor 1/2:

        unclipped:  mean_t (V(s_t) - G_t)^2
        clipped:    mean_t max((V(s_t) - G_t)^2, (V_clip(s_t) - G_t)^2),
                    V_clip = V_old + clip(V - V_old, -eps_v, eps_v),   eps_v = clip_range_vf

    The clipped form (PPO2's) keeps the critic within eps_v of the values it predicted when the
    batch was collected (old_values), unless moving further also lowers the error.
    """
    squared_error = tf.square(values - returns)
    if clip_range_vf is None:
        return tf.reduce_mean(squared_error, axis)
    if old_values is None:
        raise ValueError("a clipped value loss (clip_range_vf) needs old_values")
    clipped_values = old_values + tf.clip_by_value(values - old_values, -clip_range_vf, clip_range_vf)
    return tf.reduce_mean(tf.maximum(squared_error, tf.square(clipped_values - returns)), axis)


def entropy_loss(entropies, axis=None):
    """-mean_t H(pi(.|s_t)): minimising it (with a positive coefficient) raises the entropy."""
    return -tf.reduce_mean(entropies, axis)
