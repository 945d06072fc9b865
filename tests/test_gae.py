"""GAE(lambda) over a fixed-horizon (T, N) rollout, against sums written out element by element."""
import numpy as np
import pytest

from tfpg.maths.returns import gae_advantages

T, N = 7, 3


def rollout():
    """Three envs over T = 7 steps:
    env 0: terminated and truncated at once at t = 2 (termination wins: no bootstrap), then a new
           episode runs past the cut (bootstraps from last_values);
    env 1: truncated (time limit) at t = 3, then truncated again at the last row t = 6;
    env 2: terminates at t = 4, a one-step episode truncated at t = 5, one step running at the cut.
    """
    rng = np.random.default_rng(3)
    rewards = rng.normal(size=(T, N))
    values = rng.normal(size=(T, N))
    terminated = np.zeros((T, N), bool)
    truncated = np.zeros((T, N), bool)
    terminated[2, 0] = True
    truncated[2, 0] = True
    truncated[3, 1] = truncated[6, 1] = True
    terminated[4, 2] = True
    truncated[5, 2] = True
    bootstrap_values = np.full((T, N), np.nan)   # only read where truncated
    bootstrap_values[truncated] = rng.normal(size=truncated.sum())
    last_values = rng.normal(size=N)
    return rewards, values, terminated, truncated, bootstrap_values, last_values


def value_after(t, n, values, terminated, truncated, bootstrap_values, last_values):
    """What the value of the step after (t, n) is, spelled out case by case."""
    if terminated[t, n]:
        return 0.0
    if truncated[t, n]:
        return bootstrap_values[t, n]
    if t == T - 1:
        return last_values[n]
    return values[t + 1, n]


def episode_end(t, n, terminated, truncated):
    """Last row of the episode segment holding (t, n) inside this rollout."""
    k = t
    while k < T - 1 and not (terminated[k, n] or truncated[k, n]):
        k += 1
    return k


def brute_gae(rewards, values, terminated, truncated, bootstrap_values, last_values, gamma, lam):
    """A_t = sum_{k=0}^{end-t} (gamma lam)^k delta_{t+k}, each delta from its own case analysis."""
    def delta(t, n):
        return rewards[t, n] + gamma * value_after(t, n, values, terminated, truncated, bootstrap_values,
                                                   last_values) - values[t, n]
    adv = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            end = episode_end(t, n, terminated, truncated)
            adv[t, n] = sum((gamma * lam) ** (k - t) * delta(k, n) for k in range(t, end + 1))
    return adv


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.5), (1.0, 1.0), (0.8, 0.0)])
def test_gae_matches_brute_force_sum(gamma, lam):
    data = rollout()
    advantages, returns = gae_advantages(*data, gamma=gamma, lam=lam)
    expected = brute_gae(*data, gamma, lam)
    np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(returns, expected + data[1], rtol=1e-5, atol=1e-5)
    assert advantages.dtype == np.float32 and advantages.shape == (T, N)


def test_gae_lambda_one_is_bootstrapped_discounted_return():
    """lambda = 1: returns_t = sum_{k=t}^{end} gamma^(k-t) r_k + gamma^(end-t+1) V_after(end)."""
    rewards, values, terminated, truncated, bootstrap_values, last_values = data = rollout()
    gamma = 0.95
    _, returns = gae_advantages(*data, gamma=gamma, lam=1.0)
    for n in range(N):
        for t in range(T):
            end = episode_end(t, n, terminated, truncated)
            g = sum(gamma ** (k - t) * rewards[k, n] for k in range(t, end + 1))
            g += gamma ** (end - t + 1) * value_after(end, n, values, terminated, truncated, bootstrap_values,
                                                      last_values)
            assert returns[t, n] == pytest.approx(g, rel=1e-5, abs=1e-5)


def test_gae_lambda_zero_is_one_step_td_error():
    rewards, values, terminated, truncated, bootstrap_values, last_values = data = rollout()
    gamma = 0.9
    advantages, returns = gae_advantages(*data, gamma=gamma, lam=0.0)
    for n in range(N):
        for t in range(T):
            target = rewards[t, n] + gamma * value_after(t, n, values, terminated, truncated, bootstrap_values,
                                                         last_values)
            assert returns[t, n] == pytest.approx(target, rel=1e-5, abs=1e-5)
            assert advantages[t, n] == pytest.approx(target - values[t, n], rel=1e-5, abs=1e-5)


def test_gae_cases_at_the_cut_by_hand():
    """One env, T = 2, gamma = 0.5, lambda = 1, V = 0 except where named: what each end case adds."""
    rewards = np.array([[1.0], [2.0]])
    values = np.zeros((2, 1))
    no = np.zeros((2, 1), bool)
    last = np.array([8.0])
    boot = np.array([[np.nan], [4.0]])
    # running at the cut: A_1 = 2 + 0.5 * 8 = 6, A_0 = 1 + 0.5 * 6 = 4
    adv, _ = gae_advantages(rewards, values, no, no, boot, last, 0.5, 1.0)
    np.testing.assert_allclose(adv[:, 0], [4.0, 6.0])
    # truncated at the last row: V(final obs) = 4 replaces V(s_T) = 8
    adv, _ = gae_advantages(rewards, values, no, np.array([[False], [True]]), boot, last, 0.5, 1.0)
    np.testing.assert_allclose(adv[:, 0], [1.0 + 0.5 * 4.0, 4.0])
    # terminated at the last row: nothing after it
    adv, _ = gae_advantages(rewards, values, np.array([[False], [True]]), no, boot, last, 0.5, 1.0)
    np.testing.assert_allclose(adv[:, 0], [2.0, 2.0])
    # terminated at row 0: A_0 does not see row 1
    adv, _ = gae_advantages(rewards, values, np.array([[True], [False]]), no, boot, last, 0.5, 1.0)
    np.testing.assert_allclose(adv[:, 0], [1.0, 6.0])
