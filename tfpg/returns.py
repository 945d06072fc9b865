"""Return estimators on batches of concatenated episodes.

A batch holds E episodes back to back; `lengths[e]` is the length T_e of episode e. Every
function returns one value per step, aligned with the concatenated rewards.
"""
from __future__ import annotations

import numpy as np


def _episodes(rewards: np.ndarray, lengths: np.ndarray):
    start = 0
    for length in lengths:
        yield start, start + int(length)
        start += int(length)
    if start != len(rewards):
        raise ValueError(f"episode lengths sum to {start} but there are {len(rewards)} rewards")


def reward_to_go(rewards: np.ndarray, lengths: np.ndarray, gamma: float,
                 bootstrap: np.ndarray | None = None) -> np.ndarray:
    """G_t = sum_{k=t}^{T-1} gamma^(k-t) r_k  (+ gamma^(T-t) V(s_T) if bootstrap is given).

    Computed backwards, G_t = r_t + gamma G_{t+1}, one episode at a time. `bootstrap[e]` is the
    value of episode e's final observation: V(s_T) for a time-limit truncation, 0 for a true
    termination (there is no future after a terminal state).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    returns = np.empty_like(rewards)
    for e, (start, end) in enumerate(_episodes(rewards, lengths)):
        g = 0.0 if bootstrap is None else float(bootstrap[e])
        for t in range(end - 1, start - 1, -1):
            g = rewards[t] + gamma * g
            returns[t] = g
    return returns.astype(np.float32)


def total_return(rewards: np.ndarray, lengths: np.ndarray, gamma: float) -> np.ndarray:
    """G_0 = sum_{k=0}^{T-1} gamma^k r_k of each episode, repeated for all of its steps.

    CS285's first estimator: every log-prob of a trajectory is weighted by the whole return r(tau).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    out = np.empty_like(rewards)
    for start, end in _episodes(rewards, lengths):
        out[start:end] = np.sum(rewards[start:end] * gamma ** np.arange(end - start))
    return out.astype(np.float32)


def standardize(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """(x - mean(x)) / (std(x) + eps), over the whole batch."""
    x = np.asarray(x, dtype=np.float32)
    return (x - x.mean()) / (x.std() + eps)
