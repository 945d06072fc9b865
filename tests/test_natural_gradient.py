"""Natural gradient maths: F v against an explicitly built Fisher matrix, conjugate gradient against
np.linalg.solve, the natural step's KL against delta, and TRPO's line search (accept or leave theta)."""
import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from tfpg.maths.natural_gradient import (
    assign_flat,
    backtracking_line_search,
    conjugate_gradient,
    flat_gradient,
    flat_params,
    importance_surrogate,
    make_fisher_vector_product,
    make_natural_direction,
    mean_kl,
    natural_step,
)
from tfpg.models.policies import make_policy

OBS_DIM = 4


def tiny_policy(kind: str, seed: int = 0):
    """A policy with one hidden layer of 3 tanh units, its weights redrawn at a scale where the
    policy is far from uniform (the default output layer is scaled to 0.01)."""
    action_space = gym.spaces.Discrete(3) if kind == "categorical" else gym.spaces.Box(-1, 1, (2,), np.float32)
    observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    policy = make_policy(kind, observation_space, action_space, hidden=(3,), seed=seed, activation="tanh")
    rng = np.random.default_rng(seed)
    for v in policy.variables:
        v.assign(0.8 * rng.normal(size=v.shape).astype(np.float32))
    return policy


def observations(batch: int, seed: int = 1):
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, OBS_DIM)).astype(np.float32))


def jacobian(policy, obs, output):
    """d output(obs)[b, j] / d theta as a (B, J, P) float64 array, theta flattened in policy.variables order,
    one gradient per output entry."""
    with tf.GradientTape(persistent=True) as tape:
        y = output(obs)
        entries = [[y[b, j] for j in range(y.shape[1])] for b in range(y.shape[0])]
    return np.array([[flat_gradient(tape, e, policy.variables).numpy() for e in row] for row in entries], np.float64)


def brute_fisher(policy, obs) -> np.ndarray:
    """F = mean_s E_{a~pi(.|s)}[grad log pi(a|s) grad log pi(a|s)^T], built entry by entry.

    categorical: the expectation is the sum over all actions, sum_a pi(a|s) g_a g_a^T;
    Gaussian: in (mu, log sigma) the Fisher of N(mu, sigma^2) is diag(1/sigma^2, 2) per dimension, so
    F_s = J_mu^T diag(1/sigma^2) J_mu + 2 J_logstd^T J_logstd with the explicit Jacobians J.
    """
    if policy.kind == "categorical":
        grad_log_pi = jacobian(policy, obs, lambda o: tf.nn.log_softmax(policy.logits(o)))   # (B, A, P)
        probs = tf.nn.softmax(policy.logits(obs)).numpy().astype(np.float64)              # (B, A)
        return np.einsum("ba,bap,baq->pq", probs, grad_log_pi, grad_log_pi) / obs.shape[0]
    j_mean = jacobian(policy, obs, lambda o: policy.distribution_params(o)["mean"])
    j_log_std = jacobian(policy, obs, lambda o: policy.distribution_params(o)["log_std"])
    inv_var = np.exp(-2.0 * policy.log_std.numpy().astype(np.float64))
    per_state = np.einsum("bdp,d,bdq->bpq", j_mean, inv_var, j_mean) + 2.0 * np.einsum("bdp,bdq->bpq", j_log_std,
                                                                                        j_log_std)
    return per_state.mean(axis=0)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_fisher_vector_product_equals_explicit_fisher(kind):
    policy = tiny_policy(kind)
    obs = observations(6)
    params_old = policy.distribution_params(obs)
    fisher = brute_fisher(policy, obs)
    n = fisher.shape[0]
    assert n == flat_params(policy.variables).shape[0]
    damping = 0.1
    fvp = make_fisher_vector_product(policy, damping)
    # Every column: F e_i + damping e_i, so the whole matrix is compared, not one projection of it.
    columns = np.stack([fvp(obs, params_old, tf.one_hot(i, n)).numpy() for i in range(n)], axis=1)
    scale = np.abs(fisher).max()
    np.testing.assert_allclose(columns, fisher + damping * np.eye(n), atol=2e-5 * scale, rtol=1e-4)
    v = np.random.default_rng(2).normal(size=n).astype(np.float32)
    np.testing.assert_allclose(fvp(obs, params_old, tf.constant(v)).numpy(), (fisher + damping * np.eye(n)) @ v,
                               atol=2e-5 * scale * np.abs(v).sum(), rtol=1e-4)


def test_fisher_is_the_expected_not_the_sampled_outer_product():
    """The KL's Hessian averages over all actions: one sampled action per state gives another matrix."""
    policy = tiny_policy("categorical")
    obs = observations(6)
    fisher = brute_fisher(policy, obs)
    grad_log_pi = jacobian(policy, obs, lambda o: tf.nn.log_softmax(policy.logits(o)))
    sampled = np.einsum("bp,bq->pq", grad_log_pi[:, 0], grad_log_pi[:, 0]) / 6   # action 0 at every state
    assert np.abs(sampled - fisher).max() > 0.1 * np.abs(fisher).max()


def test_conjugate_gradient_matches_solve():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(6, 6))
    a = m @ m.T + 0.5 * np.eye(6)
    b = rng.normal(size=6)
    x, residual = conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(a), v), tf.constant(b), iterations=6)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)
    assert float(residual) < 1e-6
    # Fewer iterations: an approximation, and its residual says how good.
    x2, residual2 = conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(a), v), tf.constant(b), iterations=2)
    assert float(residual2) == pytest.approx(np.linalg.norm(b - a @ x2.numpy()), rel=1e-6)
    assert float(residual2) > float(residual)


def test_conjugate_gradient_stops_at_residual_tol():
    calls = []

    def matvec(v):
        calls.append(1)
        return 2.0 * v   # A = 2 I: exact after one step

    x, residual = conjugate_gradient(matvec, tf.constant([1.0, -3.0], tf.float64), iterations=10)
    np.testing.assert_allclose(x.numpy(), [0.5, -1.5])
    assert float(residual) == 0.0 and len(calls) == 1


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_compiled_natural_direction_solves_damped_fisher_system(kind):
    policy = tiny_policy(kind)
    obs = observations(6)
    params_old = policy.distribution_params(obs)
    damping = 0.1
    g = tf.constant(np.random.default_rng(3).normal(size=flat_params(policy.variables).shape[0]).astype(np.float32))
    direction = make_natural_direction(policy, damping, iterations=60, residual_tol=1e-12)
    x, residual = direction(obs, params_old, g)
    system = brute_fisher(policy, obs) + damping * np.eye(g.shape[0])
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(system, g.numpy()), rtol=1e-3, atol=1e-3)
    assert float(residual) < 1e-3


def surrogate_setup(kind: str, batch: int = 64):
    """A batch with actions from pi_old and random advantages; returns what TRPO's step needs."""
    policy = tiny_policy(kind)
    obs = observations(batch)
    params_old = policy.distribution_params(obs)
    actions = policy.distribution(obs).sample(seed=tf.constant([1, 2]))
    old_log_probs = policy.distribution(obs).log_prob(actions)
    advantages = tf.constant(np.random.default_rng(4).normal(size=batch).astype(np.float32))

    @tf.function
    def surrogate_and_kl():
        log_probs = policy.distribution(obs).log_prob(actions)
        return importance_surrogate(log_probs, old_log_probs, advantages), mean_kl(policy, obs, params_old)

    with tf.GradientTape() as tape:
        surrogate = importance_surrogate(policy.distribution(obs).log_prob(actions), old_log_probs, advantages)
    g = flat_gradient(tape, surrogate, policy.variables)
    return policy, obs, g, surrogate_and_kl, float(surrogate)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_natural_step_kl_is_delta_to_second_order(kind):
    """With x = F^+ g (numpy, float64): 1/2 s^T F s = delta exactly, and the measured
    KL(pi_old || pi_{theta_old + s}) / delta -> 1 as delta -> 0.

    The convergence is slow for this tiny network: F's smallest non-zero eigenvalues are ~1e-5..1e-4,
    so the undamped step is long along those directions and the cubic remainder is large unless delta
    is far smaller (measured ratio here ~2.6..9.7 at delta = 1e-2, ~1.0 at 1e-5). Hence the line search.
    """
    policy, obs, g, surrogate_and_kl, _ = surrogate_setup(kind)
    theta_old = flat_params(policy.variables)
    fisher = brute_fisher(policy, obs)
    g64 = g.numpy().astype(np.float64)
    x = np.linalg.pinv(fisher, rcond=1e-10, hermitian=True) @ g64   # F is singular (softmax shift, sample size)
    errors = []
    for max_kl in (1e-2, 1e-3, 1e-4, 1e-5):
        step = natural_step(tf.constant(g64), tf.constant(x), max_kl).numpy()
        assert 0.5 * step @ fisher @ step == pytest.approx(max_kl, rel=1e-6)
        assign_flat(policy.variables, theta_old + tf.constant(step, tf.float32))
        errors.append(abs(float(surrogate_and_kl()[1]) / max_kl - 1.0))
        assign_flat(policy.variables, theta_old)
    assert errors[-1] < 0.05, errors
    assert errors[-1] < errors[0] / 10, errors   # the third-order remainder shrinks with the step


def test_natural_step_zero_gradient_is_zero_step():
    step = natural_step(tf.zeros(3), tf.zeros(3), 0.01)
    np.testing.assert_array_equal(step.numpy(), np.zeros(3))


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_line_search_accepts_an_improving_step_within_the_trust_region(kind):
    policy, obs, g, surrogate_and_kl, surrogate_old = surrogate_setup(kind)
    theta_old = flat_params(policy.variables)
    max_kl = 0.01
    x, _ = make_natural_direction(policy, damping=0.1)(obs, policy.distribution_params(obs), g)
    step = natural_step(g, x, max_kl)
    result = backtracking_line_search(policy.variables, theta_old, step, surrogate_and_kl, surrogate_old, max_kl)
    assert result.step_fraction > 0 and result.improvement > 0 and result.kl <= max_kl
    np.testing.assert_allclose(flat_params(policy.variables).numpy(), (theta_old + result.step_fraction * step).numpy())
    surrogate, kl = surrogate_and_kl()
    assert float(surrogate) - surrogate_old == pytest.approx(result.improvement)
    assert float(kl) == pytest.approx(result.kl)


def test_line_search_backtracks_until_kl_holds():
    """A step 4x the natural one has KL ~ 16 delta: the full step and half of it must be refused."""
    policy, obs, g, surrogate_and_kl, surrogate_old = surrogate_setup("categorical")
    theta_old = flat_params(policy.variables)
    max_kl = 0.005
    x, _ = make_natural_direction(policy, damping=0.1)(obs, policy.distribution_params(obs), g)
    result = backtracking_line_search(policy.variables, theta_old, 4.0 * natural_step(g, x, max_kl), surrogate_and_kl,
                                      surrogate_old, max_kl)
    assert 0 < result.step_fraction <= 0.25
    assert result.kl <= max_kl and result.improvement > 0


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
def test_line_search_rejects_a_worsening_step_and_restores_theta(kind):
    """Along -s (the gradient's wrong sign) the surrogate falls for every fraction: theta must stay theta_old."""
    policy, obs, g, surrogate_and_kl, surrogate_old = surrogate_setup(kind)
    theta_before = [v.numpy().copy() for v in policy.variables]
    theta_old = flat_params(policy.variables)
    x, _ = make_natural_direction(policy, damping=0.1)(obs, policy.distribution_params(obs), g)
    result = backtracking_line_search(policy.variables, theta_old, -natural_step(g, x, 0.01), surrogate_and_kl,
                                      surrogate_old, 0.01)
    assert tuple(result) == (0.0, 0.0, 0.0)
    for v, before in zip(policy.variables, theta_before):
        np.testing.assert_array_equal(v.numpy(), before)


def test_flat_helpers_round_trip_and_fill_missing_gradients():
    policy = tiny_policy("gaussian")
    theta = flat_params(policy.variables)
    assign_flat(policy.variables, theta + 1.0)
    np.testing.assert_allclose(flat_params(policy.variables).numpy(), theta.numpy() + 1.0)
    with tf.GradientTape() as tape:
        target = tf.reduce_sum(policy.log_std)      # depends on log_std only
    grad = flat_gradient(tape, target, policy.variables).numpy()
    assert grad.shape == theta.shape
    np.testing.assert_array_equal(grad[:-2], 0.0)
    np.testing.assert_array_equal(grad[-2:], 1.0)
