"""PPO/A2C loss parts against hand computations."""
import numpy as np
import pytest
import tensorflow as tf

from tfpg.maths.losses import clipped_surrogate_loss, entropy_loss, value_estimation_loss

# ratio r and advantage A, eps = 0.2; the chosen term of min(r A, clip(r, 0.8, 1.2) A) by hand:
#   r = 1.5, A = +2: min(3.0, 2.4)  = 2.4   clipped (upper side)   -> no gradient
#   r = 0.5, A = +2: min(1.0, 1.6)  = 1.0   unclipped (pessimistic)
#   r = 1.5, A = -2: min(-3.0, -2.4) = -3.0 unclipped (pessimistic)
#   r = 0.5, A = -2: min(-1.0, -1.6) = -1.6 clipped (lower side)   -> no gradient
#   r = 1.1, A = +1: inside the range  = 1.1
RATIOS = np.array([1.5, 0.5, 1.5, 0.5, 1.1])
ADVANTAGES = np.array([2.0, 2.0, -2.0, -2.0, 1.0])


def test_clipped_surrogate_matches_hand_computation():
    old_log_probs = tf.constant([-1.0, -0.3, -2.0, -0.7, -1.2], tf.float64)
    log_probs = tf.Variable(old_log_probs + np.log(RATIOS))
    with tf.GradientTape() as tape:
        loss, diagnostics = clipped_surrogate_loss(log_probs, old_log_probs, tf.constant(ADVANTAGES), 0.2)
    assert float(loss) == pytest.approx(-(2.4 + 1.0 - 3.0 - 1.6 + 1.1) / 5)   # = 0.02
    assert float(diagnostics["clip_fraction"]) == pytest.approx(4 / 5)
    # (r - 1) - log r: 1.5 -> 0.5 - 0.405465, 0.5 -> -0.5 + 0.693147, 1.1 -> 0.1 - 0.095310
    expected_kl = (2 * (0.5 - 0.4054651) + 2 * (-0.5 + 0.6931472) + (0.1 - 0.0953102)) / 5
    assert float(diagnostics["approx_kl"]) == pytest.approx(expected_kl, rel=1e-6)
    # d loss / d log pi_t = -r_t A_t / n where the unclipped term is the min, 0 where the clipped one is.
    expected_grad = -np.array([0.0, 0.5 * 2.0, 1.5 * -2.0, 0.0, 1.1 * 1.0]) / 5
    np.testing.assert_allclose(tape.gradient(loss, log_probs).numpy(), expected_grad, rtol=1e-12)


def test_clipped_surrogate_on_policy_is_minus_mean_advantage():
    """At r = 1 (the first epoch's first minibatch) the loss is -mean(A), nothing clipped, KL 0."""
    log_probs = tf.constant([-0.5, -1.5, -2.5])
    loss, diagnostics = clipped_surrogate_loss(log_probs, log_probs, tf.constant([1.0, -4.0, 0.5]), 0.1)
    assert float(loss) == pytest.approx(2.5 / 3)
    assert float(diagnostics["clip_fraction"]) == 0.0 and float(diagnostics["approx_kl"]) == 0.0


def test_value_loss_unclipped_and_clipped_by_hand():
    values = tf.constant([1.0, 3.0, 0.0])
    returns = tf.constant([2.0, 2.0, 0.5])
    old_values = tf.constant([0.5, 2.9, 0.4])
    # squared errors 1, 1, 0.25 (no factor 1/2)
    assert float(value_estimation_loss(values, returns)) == pytest.approx(2.25 / 3)
    # V_clip = old + clip(V - old, -0.2, 0.2) = 0.7, 3.0, 0.2 -> (V_clip - G)^2 = 1.69, 1.0, 0.09
    # max with the unclipped errors: 1.69, 1.0, 0.25
    clipped = value_estimation_loss(values, returns, old_values, clip_range_vf=0.2)
    assert float(clipped) == pytest.approx((1.69 + 1.0 + 0.25) / 3, rel=1e-6)
    with pytest.raises(ValueError, match="old_values"):
        value_estimation_loss(values, returns, clip_range_vf=0.2)


def test_entropy_loss_is_minus_mean_entropy():
    assert float(entropy_loss(tf.constant([0.5, 1.5]))) == pytest.approx(-1.0)
