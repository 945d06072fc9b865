"""The REINFORCE surrogate's gradient against closed forms on a two-armed bandit."""
import gymnasium as gym
import numpy as np
import tensorflow as tf

from tfpg.algos.reinforce.algorithm import gradient_stats, policy_gradient_loss
from tfpg.models.policies import CategoricalPolicy


def bandit_policy(logits):
    """A policy whose logits are exactly its output bias (observations are 0, no hidden layer)."""
    obs_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    policy = CategoricalPolicy(obs_space, gym.spaces.Discrete(len(logits)), hidden=(), seed=0)
    kernel, bias = policy.model.get_layer("out").weights
    kernel.assign(tf.zeros_like(kernel))
    bias.assign(tf.constant(logits, tf.float32))
    return policy, bias


def surrogate_grad(policy, bias, actions, weights):
    obs = tf.zeros([len(actions), 1])
    with tf.GradientTape() as tape:
        _, losses = policy_gradient_loss(policy, obs, tf.constant(actions, tf.int32),
                                         tf.constant(weights, tf.float32), 0.0)
    return -tape.gradient(losses["loss_total"], bias).numpy()   # ascent direction


def test_tfp_log_probs_equal_manual_log_softmax():
    obs_space = gym.spaces.Box(-5, 5, (4,), np.float32)
    policy = CategoricalPolicy(obs_space, gym.spaces.Discrete(3), hidden=(16,), seed=1)
    obs = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    logits = policy.logits(obs).numpy().astype(np.float64)
    manual = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    for a in range(3):
        got = policy.distribution(obs).log_prob(np.full(10, a)).numpy()
        np.testing.assert_allclose(got, manual[:, a], rtol=1e-5, atol=1e-6)
    probs = np.exp(manual)
    np.testing.assert_allclose(policy.distribution(obs).entropy().numpy(), -(probs * manual).sum(-1), rtol=1e-5)


def test_surrogate_gradient_is_the_score_function_estimate():
    """grad of mean(G_i log pi(a_i)) w.r.t. the logits = mean_i G_i (e_{a_i} - pi)."""
    logits = np.array([0.4, -0.3])
    policy, bias = bandit_policy(logits)
    pi = np.exp(logits) / np.exp(logits).sum()
    actions = np.array([0, 1, 1, 0, 1])
    weights = np.array([1.0, -2.0, 0.5, 3.0, 1.5])
    expected = np.mean([w * (np.eye(2)[a] - pi) for a, w in zip(actions, weights)], axis=0)
    np.testing.assert_allclose(surrogate_grad(policy, bias, actions, weights), expected, rtol=1e-5, atol=1e-7)


def test_exact_expectation_equals_analytic_bandit_gradient():
    """Weighting each arm by its probability gives exactly grad E[r] = pi * (r - pi.r)."""
    logits, rewards = np.array([0.2, 0.9]), np.array([1.0, -0.5])
    policy, bias = bandit_policy(logits)
    pi = np.exp(logits) / np.exp(logits).sum()
    # A batch of the two arms with weights 2*pi(a)*r(a): its mean is sum_a pi(a) r(a) grad log pi(a).
    got = surrogate_grad(policy, bias, np.array([0, 1]), 2 * pi * rewards)
    np.testing.assert_allclose(got, pi * (rewards - pi @ rewards), rtol=1e-5, atol=1e-7)


def test_monte_carlo_gradient_converges_to_analytic():
    logits, rewards = np.array([0.2, 0.9]), np.array([1.0, -0.5])
    policy, bias = bandit_policy(logits)
    pi = np.exp(logits) / np.exp(logits).sum()
    actions = np.random.default_rng(0).choice(2, size=200_000, p=pi)
    got = surrogate_grad(policy, bias, actions, rewards[actions])
    np.testing.assert_allclose(got, pi * (rewards - pi @ rewards), atol=5e-3)  # ~4 standard errors


def test_gradient_stats_match_direct_computation():
    grads = [tf.constant([[3.0, -4.0]]), tf.constant([1.0, 1.0, -7.0, 1.0])]
    stats = gradient_stats(grads)
    rms = [np.sqrt(np.mean(np.square(g.numpy()))) for g in grads]
    assert float(stats["grad_l2"]) == np.float32(np.mean(rms))
    assert float(stats["grad_max"]) == 7.0
