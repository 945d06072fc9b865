"""Schedules as pure functions of the env steps taken so far (nothing to checkpoint: resume recomputes them),
and the KL-adaptive learning rate, whose state is the optimizer's lr (checkpointed with the optimizer)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinearSchedule:
    """value(t) = start + (end - start) * min(1, t / total_steps), t the env steps so far.

    Falls linearly from `start` at t = 0 to `end` (default 0) at the step budget, then stays at
    `end`; used for PPO's learning rate and clip range (the zoo's `lin_<value>`, with end = 0).
    """

    start: float
    total_steps: int
    end: float = 0.0

    def __post_init__(self):
        if self.total_steps <= 0:
            raise ValueError(f"a linear schedule needs total_steps > 0, got {self.total_steps}")

    def __call__(self, env_steps: int) -> float:
        progress = min(1.0, max(0.0, env_steps / self.total_steps))
        return self.start + (self.end - self.start) * progress

    def in_graph(self, env_steps):
        """value(t) for a tensor t inside a compiled program (the graph backend keeps t in a variable)."""
        import tensorflow as tf

        progress = tf.clip_by_value(tf.cast(env_steps, tf.float32) / self.total_steps, 0.0, 1.0)
        return self.start + (self.end - self.start) * progress


def constant_or_linear(value: float, linear: bool, total_steps: int, end: float = 0.0):
    """A schedule for an option that may be scheduled: LinearSchedule(value, total_steps, end) if linear,
    else the constant function t -> value."""
    return LinearSchedule(value, total_steps, end) if linear else LinearSchedule(value, total_steps, value)


def adapt_learning_rate(optimizer, kl: float, target_kl: float, max_lr: float) -> float:
    """KL-adaptive step size: lr <- lr / 1.5 if the batch's KL(pi_old || pi) > 2 target_kl,
    lr <- min(1.5 lr, max_lr) if it is < target_kl / 2, never above max_lr nor below 1e-6; returns the new lr.

    The KL one Adam step causes grows as sigma shrinks (KL ~ (d mu / sigma)^2) and with the advantages'
    scale, so a fixed lr that is safe early can overshoot later; this keeps each update near the target."""
    lr = min(float(optimizer.learning_rate.numpy()), max_lr)
    if kl > 2 * target_kl:
        lr = max(lr / 1.5, 1e-6)
    elif kl < target_kl / 2:
        lr = min(lr * 1.5, max_lr)
    optimizer.learning_rate.assign(lr)
    return lr
