import numpy as np
import pytest

from tfpg.returns import reward_to_go, standardize, total_return


def brute_reward_to_go(rewards, lengths, gamma, bootstrap=None):
    """Double sum: G_t = sum_{k=t}^{T-1} gamma^(k-t) r_k (+ gamma^(T-t) V_T)."""
    out, start = [], 0
    for e, length in enumerate(lengths):
        ep = rewards[start:start + length]
        for t in range(length):
            g = sum(gamma ** (k - t) * ep[k] for k in range(t, length))
            if bootstrap is not None:
                g += gamma ** (length - t) * bootstrap[e]
            out.append(g)
        start += length
    return np.array(out)


@pytest.mark.parametrize("gamma", [1.0, 0.99, 0.5, 0.0])
def test_reward_to_go_matches_double_sum(gamma):
    rng = np.random.default_rng(0)
    lengths = np.array([1, 7, 3, 20])
    rewards = rng.normal(size=lengths.sum()).astype(np.float32)
    np.testing.assert_allclose(reward_to_go(rewards, lengths, gamma), brute_reward_to_go(rewards, lengths, gamma),
                               rtol=1e-5, atol=1e-5)


def test_reward_to_go_bootstraps_only_where_told():
    rng = np.random.default_rng(1)
    lengths = np.array([4, 5])
    rewards = rng.normal(size=9)
    bootstrap = np.array([0.0, 10.0])  # first terminated, second truncated with V(s_T) = 10
    got = reward_to_go(rewards, lengths, 0.9, bootstrap)
    np.testing.assert_allclose(got, brute_reward_to_go(rewards, lengths, 0.9, bootstrap), rtol=1e-5)
    assert got[-1] == pytest.approx(rewards[-1] + 0.9 * 10.0, rel=1e-6)


def test_cartpole_like_returns_closed_form():
    # All rewards 1: G_t = (1 - gamma^(T-t)) / (1 - gamma).
    T, gamma = 50, 0.99
    got = reward_to_go(np.ones(T), np.array([T]), gamma)
    np.testing.assert_allclose(got, (1 - gamma ** (T - np.arange(T))) / (1 - gamma), rtol=1e-5)


@pytest.mark.parametrize("gamma", [1.0, 0.95])
def test_total_return_repeats_g0(gamma):
    rng = np.random.default_rng(2)
    lengths = np.array([3, 6])
    rewards = rng.normal(size=9)
    rtg = brute_reward_to_go(rewards, lengths, gamma)
    expected = np.r_[np.full(3, rtg[0]), np.full(6, rtg[3])]
    np.testing.assert_allclose(total_return(rewards, lengths, gamma), expected, rtol=1e-5)


def test_lengths_must_cover_rewards():
    with pytest.raises(ValueError):
        reward_to_go(np.ones(5), np.array([2, 2]), 0.9)


def test_standardize():
    x = standardize(np.array([1.0, 2.0, 3.0, 10.0]))
    assert abs(x.mean()) < 1e-6 and abs(x.std() - 1) < 1e-5
