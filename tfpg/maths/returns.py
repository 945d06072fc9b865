"""Return estimators.

Episode estimators take E complete episodes back to back (`lengths[e]` = T_e) and return one
value per step. The n-step estimator works on time-major (T, N) segments of a vector env and
needs no complete episodes.
"""
from __future__ import annotations

from dataclasses import dataclass

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


def lambda_returns(rewards: np.ndarray, values: np.ndarray, lengths: np.ndarray, gamma: float, lam: float,
                   bootstrap: np.ndarray) -> np.ndarray:
    """TD(lambda) returns G^lambda_t = V(s_t) + A_t, with A_t the GAE(lambda) advantage:

        delta_t = r_t + gamma V(s_{t+1}) - V(s_t),   A_t = sum_{k>=0} (gamma lambda)^k delta_{t+k}

    Computed backwards per episode, A_t = delta_t + gamma lambda A_{t+1}. V(s_T) = bootstrap[e]:
    the value of the final observation after a time-limit truncation, 0 after a termination.
    lambda = 1 gives the bootstrapped reward-to-go, lambda = 0 the one-step TD target.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    returns = np.empty_like(rewards)
    for e, (start, end) in enumerate(_episodes(rewards, lengths)):
        next_value, advantage = float(bootstrap[e]), 0.0
        for t in range(end - 1, start - 1, -1):
            advantage = rewards[t] + gamma * next_value - values[t] + gamma * lam * advantage
            returns[t] = advantage + values[t]
            next_value = values[t]
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


@dataclass
class NStepTargets:
    """Per-transition n-step quantities for rows 0..M-1 of a time-major segment.

    partial_returns  sum_{k<j} gamma^k r_{t+k}, j = n or the steps until the episode ended
    bootstrap_rows   index of the row whose observation is s_{t+j} (the terminal obs at an end)
    bootstrap_discounts  gamma^j
    bootstrap_mask   True unless the episode terminated within the window (time-limit
                     truncation and an unfinished window both bootstrap)
    """

    partial_returns: np.ndarray
    bootstrap_rows: np.ndarray
    bootstrap_discounts: np.ndarray
    bootstrap_mask: np.ndarray


def n_step_targets(rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
                   gamma: float, n: int) -> NStepTargets:
    """n-step returns for every row t in 0..T-n of (T, N) time-major arrays.

    G_t^(n) = sum_{k=0}^{j-1} gamma^k r_{t+k} + gamma^j V(s_{t+j}) [if not terminated]

    where j = n, or j = steps to the end of the episode if it ends inside the window. With
    NEXT_STEP autoreset, the row after an episode's last step holds that episode's final
    observation (and is itself not a transition), so s_{t+j} is always row t+j.
    Rows T-n+1..T-1 need rewards not yet seen: the caller keeps them for the next segment.
    """
    T = rewards.shape[0]
    M = T - n + 1
    if M <= 0:
        raise ValueError(f"a segment of {T} rows has no complete {n}-step window")
    rewards = rewards.astype(np.float64)
    done = terminated | truncated
    partial = np.zeros((M, *rewards.shape[1:]))
    rows = np.broadcast_to(np.arange(M).reshape(M, *([1] * (rewards.ndim - 1))), partial.shape) + n
    rows = rows.copy()
    discounts = np.full(partial.shape, gamma ** n)
    mask = np.ones(partial.shape, dtype=bool)
    alive = np.ones(partial.shape, dtype=bool)
    for k in range(n):
        partial += np.where(alive, gamma ** k * rewards[k:k + M], 0.0)
        ends = alive & done[k:k + M]
        rows[ends] = (np.nonzero(ends)[0] + k + 1)
        discounts[ends] = gamma ** (k + 1)
        mask[ends] = ~terminated[k:k + M][ends]
        alive &= ~done[k:k + M]
    return NStepTargets(partial.astype(np.float32), rows, discounts.astype(np.float32), mask)


def gae_advantages(rewards: np.ndarray, values: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
                   bootstrap_values: np.ndarray, last_values: np.ndarray, gamma: float,
                   lam: float) -> tuple[np.ndarray, np.ndarray]:
    """GAE(lambda) over a fixed-horizon rollout: (T, N) time-major arrays, N envs, no complete episodes needed.

        delta_t = r_t + gamma * V_next_t * (1 - terminated_t) - V(s_t)
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   done_t = terminated_t | truncated_t,  A_T = 0
        returns = A_t + V(s_t)                                     (the TD(lambda) return, the critic's target)

    V_next_t is the value of what follows step t:
        V(s_{t+1}) = values[t+1]           inside an episode,
        bootstrap_values[t]                at a time-limit truncation (V of the episode's final observation),
        last_values                        for the last row, t = T-1 (V of the observation after the cut),
    and is multiplied by 0 at a termination (no future after a terminal state). So a truncated
    episode bootstraps, a terminated one does not, and one still running at the cut bootstraps
    from last_values. bootstrap_values (T, N) is read only where truncated (other entries may hold
    anything finite or not); last_values has shape (N,).
    lambda = 1 gives A_t = (discounted return with bootstrap) - V(s_t); lambda = 0 the one-step TD error.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    terminated = np.asarray(terminated, dtype=bool)
    truncated = np.asarray(truncated, dtype=bool)
    following_values = np.concatenate([values[1:], np.asarray(last_values, dtype=np.float64)[None]], axis=0)
    next_values = np.where(truncated, np.asarray(bootstrap_values, dtype=np.float64), following_values)
    next_values = np.where(terminated, 0.0, next_values)   # also hides a non-finite bootstrap after a termination
    deltas = rewards + gamma * next_values - values
    continues = 1.0 - (terminated | truncated)
    advantages = np.empty_like(deltas)
    advantage = np.zeros(deltas.shape[1:])
    for t in range(deltas.shape[0] - 1, -1, -1):
        advantage = deltas[t] + gamma * lam * continues[t] * advantage
        advantages[t] = advantage
    return advantages.astype(np.float32), (advantages + values).astype(np.float32)
