"""A gradient step guarded against non-finite values, for every algorithm's update."""
from __future__ import annotations

import tensorflow as tf


def apply_if_finite(optimizer, loss, grads, variables, grad_clip: float):
    """Clip the gradients to global norm `grad_clip` (if > 0) and apply them only if the loss and every
    gradient are finite: a NaN step would reach the weights and Adam's moments. Returns whether it applied."""
    if grad_clip > 0:
        grads, _ = tf.clip_by_global_norm(grads, grad_clip)
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(x)) for x in [loss, *grads]])

    def apply():
        optimizer.apply_gradients(zip(grads, variables))
        return tf.constant(True)

    return tf.cond(finite, apply, lambda: tf.constant(False))
