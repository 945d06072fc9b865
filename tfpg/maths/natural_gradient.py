"""The natural policy gradient and TRPO's step (CS285 lecture 5, "advanced policy gradients").

Vanilla policy gradient takes a step of fixed length in parameter space; the natural gradient
takes one of fixed length in policy space:

    maximise   g^T (theta - theta_old)          g = grad_theta L(theta) at theta_old, L the surrogate
    subject to KL(pi_old || pi_theta) <= delta  (mean over the batch's states)

With the KL's second-order expansion, KL ~= 1/2 s^T F s (s = theta - theta_old, F the Fisher
information matrix = the Hessian of the mean KL at theta_old), the solution is s = beta F^-1 g with
beta = sqrt(2 delta / g^T F^-1 g). F is never built: F v comes from automatic differentiation
(`fisher_vector_product`) and x ~= F^-1 g from conjugate gradient, which needs only F v.
TRPO (Schulman et al. 2015) then backtracks along s until the surrogate improves and the
actual mean KL is <= delta (`backtracking_line_search`).

Parameters are handled as one flat vector over a list of variables (`flat_params`,
`assign_flat`, `flat_gradient`), in the order of `policy.variables`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def flatten(tensors, variables=None) -> tf.Tensor:
    """concat_i reshape(t_i, [-1]); a None (a variable the target does not depend on) becomes zeros
    of variables[i]'s shape."""
    parts = []
    for i, t in enumerate(tensors):
        if t is None:
            t = tf.zeros_like(variables[i])
        parts.append(tf.reshape(t, [-1]))
    return tf.concat(parts, axis=0)


def flat_params(variables) -> tf.Tensor:
    """theta as one vector: the variables' values, flattened and concatenated."""
    return flatten([tf.convert_to_tensor(v) for v in variables])


def flat_gradient(tape: tf.GradientTape, target, variables) -> tf.Tensor:
    """grad_theta target as one vector (zeros for variables the target does not depend on)."""
    return flatten(tape.gradient(target, variables), variables)


def assign_flat(variables, flat) -> None:
    """theta <- flat: slices of `flat` reshaped into each variable in turn."""
    sizes = [int(np.prod(v.shape)) for v in variables]
    for v, part in zip(variables, tf.split(flat, sizes), strict=True):
        v.assign(tf.reshape(part, v.shape))


def mean_kl(policy, observations, params_old) -> tf.Tensor:
    """mean_s KL(pi_old(.|s) || pi_theta(.|s)), pi_old given by its distribution parameters (held constant)."""
    old = policy.distribution_from_params(tf.nest.map_structure(tf.stop_gradient, params_old))
    return tf.reduce_mean(tfd.kl_divergence(old, policy.distribution(observations)))


def fisher_vector_product(policy, observations, params_old, vector, damping: float) -> tf.Tensor:
    """F v + damping v, with F = Hessian_theta of mean_s KL(pi_old(.|s) || pi_theta(.|s)) at theta = theta_old.

        F v = grad_theta ( grad_theta KL(theta) . v )          (double backprop; F is never built)

    At theta_old the KL's gradient vanishes, so this Hessian is the Gauss-Newton form J^T H J (J the
    Jacobian of the distribution parameters in theta, H the KL's Hessian in those parameters), i.e.
    the Fisher information mean_s E_{a~pi_old}[grad log pi grad log pi^T], positive semi-definite;
    damping makes it definite. Call it with the variables at theta_old (params_old computed there).
    """
    variables = policy.variables
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            kl = mean_kl(policy, observations, params_old)
        kl_grad = flat_gradient(inner, kl, variables)
        grad_dot_vector = tf.reduce_sum(kl_grad * tf.stop_gradient(vector))
    return flat_gradient(outer, grad_dot_vector, variables) + damping * vector


def conjugate_gradient(matvec: Callable, b, iterations: int = 10, residual_tol: float = 1e-10):
    """x ~= A^-1 b for a symmetric positive-definite A known only through matvec(v) = A v.

    Conjugate gradient from x_0 = 0 (r = b - A x, p the search direction):
        alpha = r.r / p.(A p);  x <- x + alpha p;  r <- r - alpha A p;  p <- r + (r.r)_new / (r.r)_old p
    for at most `iterations` steps, stopping once ||r||^2 < residual_tol. Written as a tf.while_loop,
    so inside a tf.function matvec is traced once and the whole solve is one graph.
    Returns (x, ||r||), r the recursively updated residual (b - A x in exact arithmetic).
    """
    b = tf.convert_to_tensor(b)
    x = tf.zeros_like(b)
    rdotr = tf.reduce_sum(b * b)

    def not_converged(i, x, r, p, rdotr):
        return tf.logical_and(i < iterations, rdotr >= residual_tol)

    def cg_step(i, x, r, p, rdotr):
        a_p = matvec(p)
        alpha = rdotr / tf.reduce_sum(p * a_p)
        x = x + alpha * p
        r = r - alpha * a_p
        new_rdotr = tf.reduce_sum(r * r)
        p = r + (new_rdotr / rdotr) * p
        return i + 1, x, r, p, new_rdotr

    _, x, _, _, rdotr = tf.while_loop(not_converged, cg_step, (tf.constant(0), x, b, b, rdotr))
    return x, tf.sqrt(rdotr)


def natural_step(g, x, max_kl: float) -> tf.Tensor:
    """s = sqrt(2 delta / g^T x) x, with x ~= F^-1 g and delta = max_kl.

    Why its KL is delta to second order: KL(pi_old || pi_{theta_old + s}) = 1/2 s^T F s + O(|s|^3)
    (the zeroth- and first-order terms vanish at theta_old). With s = beta F^-1 g,
        1/2 s^T F s = 1/2 beta^2 g^T F^-1 F F^-1 g = 1/2 beta^2 g^T x,
    which equals delta for beta = sqrt(2 delta / g^T x). Among steps with that KL it maximises the
    linearised surrogate g^T s (the Lagrangian's stationary point). g^T x > 0 for F positive
    definite; it is floored at 1e-12 so that a zero gradient gives a zero step, not NaN.
    """
    g_dot_x = tf.maximum(tf.reduce_sum(g * x), 1e-12)
    return tf.sqrt(2.0 * max_kl / g_dot_x) * x


class LineSearchResult(NamedTuple):
    step_fraction: float   # the accepted fraction of the full step, 0.0 if every try was rejected
    improvement: float     # L(theta_new) - L(theta_old), 0.0 when rejected (theta unchanged)
    kl: float              # mean KL(pi_old || pi_theta_new) on the batch, 0.0 when rejected


def backtracking_line_search(variables, theta_old, full_step, surrogate_and_kl: Callable, surrogate_old: float,
                             max_kl: float, max_backtracks: int = 10, backtrack_ratio: float = 0.5
                             ) -> LineSearchResult:
    """theta <- theta_old + f s for the largest f in 1, 1/2, 1/4, ... (max_backtracks tries) with

        L(theta_old + f s) - L(theta_old) > 0   and   mean_s KL(pi_old || pi_{theta_old + f s}) <= max_kl,

    else theta <- theta_old. `surrogate_and_kl()` evaluates (L, mean KL) at the variables' current
    values (e.g. a compiled function closing over the batch); surrogate_old is L(theta_old).
    The KL is measured, not predicted: the quadratic model behind the natural step can be wrong.
    Returns LineSearchResult(step_fraction, improvement, kl), for logging.
    """
    fraction = 1.0
    for _ in range(max_backtracks):
        assign_flat(variables, theta_old + fraction * full_step)
        surrogate, kl = (float(t) for t in surrogate_and_kl())
        improvement = surrogate - float(surrogate_old)
        if improvement > 0 and kl <= max_kl:   # NaN fails both tests
            return LineSearchResult(fraction, improvement, kl)
        fraction *= backtrack_ratio
    assign_flat(variables, theta_old)
    return LineSearchResult(0.0, 0.0, 0.0)


def importance_surrogate(log_probs, old_log_probs, advantages) -> tf.Tensor:
    """TRPO's surrogate L(theta) = mean_t [pi_theta(a_t|s_t) / pi_old(a_t|s_t) A_t]; its gradient at theta_old
    is the policy gradient mean_t [grad log pi(a_t|s_t) A_t]."""
    return tf.reduce_mean(tf.exp(log_probs - old_log_probs) * advantages)


def params_spec(policy) -> dict:
    """TensorSpecs of policy.distribution_params on a batch of any size (for input signatures)."""
    probe = policy.distribution_params(tf.zeros([1, *policy.obs_spec.shape[1:]], policy.obs_spec.dtype))
    return tf.nest.map_structure(lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), probe)


def make_fisher_vector_product(policy, damping: float):
    """fisher_vector_product compiled once for this policy: fvp(observations, params_old, vector) -> F v + damping v."""
    vec = tf.TensorSpec([None], tf.float32)

    @tf.function(input_signature=[policy.obs_spec, params_spec(policy), vec])
    def fvp(observations, params_old, vector):
        return fisher_vector_product(policy, observations, params_old, vector, damping)

    return fvp.get_concrete_function()


def make_natural_direction(policy, damping: float, iterations: int = 10, residual_tol: float = 1e-10):
    """One compiled call per update: direction(observations, params_old, g) -> (x, ||r||), x ~= (F + damping I)^-1 g
    by conjugate gradient, all `iterations` Fisher-vector products inside the same graph."""
    vec = tf.TensorSpec([None], tf.float32)

    @tf.function(input_signature=[policy.obs_spec, params_spec(policy), vec])
    def direction(observations, params_old, g):
        return conjugate_gradient(lambda v: fisher_vector_product(policy, observations, params_old, v, damping),
                                  g, iterations, residual_tol)

    return direction.get_concrete_function()
