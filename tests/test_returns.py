import numpy as np
import pytest

from tfpg.maths.returns import reward_to_go, standardize, total_return


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


def brute_n_step(rewards, terminated, truncated, valid, gamma, n, values):
    """Per-env walk: G = sum_{k<j} gamma^k r_{t+k} + [not terminated] gamma^j V(row t+j)."""
    T, N = rewards.shape
    out = {}
    for i in range(N):
        for t in range(T - n + 1):
            if not valid[t, i]:
                continue
            g, j = 0.0, 0
            ended_terminal = False
            while j < n:
                g += gamma ** j * rewards[t + j, i]
                j += 1
                if terminated[t + j - 1, i] or truncated[t + j - 1, i]:
                    ended_terminal = bool(terminated[t + j - 1, i])
                    break
            if not ended_terminal:
                g += gamma ** j * values[t + j, i]
            out[(t, i)] = g
    return out


@pytest.mark.parametrize("n", [1, 3, 10])
def test_n_step_targets_match_brute_force(n):
    from tfpg.maths.returns import n_step_targets

    rng = np.random.default_rng(n)
    T, N, gamma = 40, 3, 0.9
    rewards = rng.normal(size=(T, N))
    terminated = np.zeros((T, N), bool)
    truncated = np.zeros((T, N), bool)
    terminated[[2, 20], 0] = True       # an episode shorter than n, and a later one
    truncated[[7, 30], 1] = True        # time-limit ends: bootstrap from the final observation
    terminated[15, 2] = True
    valid = np.ones((T, N), bool)
    for t, i in zip(*np.nonzero(terminated | truncated)):
        if t + 1 < T:
            valid[t + 1, i] = False      # NEXT_STEP autoreset row: not a transition
            rewards[t + 1, i] = 0.0
    values = rng.normal(size=(T + 1, N))  # V of each row's observation (row T = current obs)
    targets = n_step_targets(rewards, terminated, truncated, gamma, n)
    got = targets.partial_returns + targets.bootstrap_discounts * targets.bootstrap_mask * \
        values[targets.bootstrap_rows, np.arange(N)]
    expected = brute_n_step(rewards, terminated, truncated, valid, gamma, n, values)
    for (t, i), g in expected.items():
        assert got[t, i] == pytest.approx(g, rel=1e-5, abs=1e-5), (t, i)


def test_n_step_without_bootstrap_is_the_books_discounted_sum():
    from tfpg.maths.returns import n_step_targets

    rewards = np.ones((12, 1))
    terminated = np.zeros((12, 1), bool)
    terminated[5, 0] = True
    targets = n_step_targets(rewards, terminated, np.zeros_like(terminated), 0.5, 4)
    np.testing.assert_allclose(targets.partial_returns[:, 0][:6], [1.875, 1.875, 1.875, 1.75, 1.5, 1.0])
    assert not targets.bootstrap_mask[2:6, 0].any() and targets.bootstrap_mask[:2, 0].all()


def test_lambda_returns_are_gae_plus_values_and_reduce_to_known_cases():
    from tfpg.maths.returns import lambda_returns

    rng = np.random.default_rng(5)
    lengths = np.array([6, 4])
    rewards = rng.normal(size=10)
    values = rng.normal(size=10)
    bootstrap = np.array([0.0, 2.5])            # first terminated, second truncated
    gamma, lam = 0.9, 0.8
    # GAE by its definition: A_t = sum_k (gamma lam)^k delta_{t+k}, V after the last step = bootstrap.
    expected, start = [], 0
    for e, length in enumerate(lengths):
        v = np.r_[values[start:start + length], bootstrap[e]]
        r = rewards[start:start + length]
        deltas = r + gamma * v[1:] - v[:-1]
        for t in range(length):
            expected.append(sum((gamma * lam) ** k * deltas[t + k] for k in range(length - t)) + v[t])
        start += length
    np.testing.assert_allclose(lambda_returns(rewards, values, lengths, gamma, lam, bootstrap), expected, rtol=1e-5)
    # lambda = 1: the bootstrapped reward-to-go, whatever the values.
    np.testing.assert_allclose(lambda_returns(rewards, values, lengths, gamma, 1.0, bootstrap),
                               reward_to_go(rewards, lengths, gamma, bootstrap), rtol=1e-5, atol=1e-5)
    # lambda = 0: the one-step TD target r_t + gamma V(s_{t+1}).
    td = lambda_returns(rewards, values, lengths, gamma, 0.0, bootstrap)
    assert td[2] == pytest.approx(rewards[2] + gamma * values[3], rel=1e-5)
    assert td[5] == pytest.approx(rewards[5], rel=1e-5) and td[9] == pytest.approx(rewards[9] + gamma * 2.5, rel=1e-5)
