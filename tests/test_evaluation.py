"""Greedy evaluation: N whole episodes split over a vector env, equal to single-env runs."""
import gymnasium as gym
import numpy as np

from tfpg.envs import make_vec_env
from tfpg.evaluation import evaluate_returns, greedy_returns


def lean_controller(obs):
    """Push towards the side the pole leans to: long, varied episodes without any training."""
    obs = np.atleast_2d(obs)
    return (obs[:, 2] > 0).astype(np.int64)


def single_env_returns(seed, episodes):
    env = gym.make("CartPole-v1")
    out = []
    obs, _ = env.reset(seed=seed)
    for _ in range(episodes):
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(int(lean_controller(obs)[0]))
            total += r
            done = term or trunc
        out.append(total)
        obs, _ = env.reset()
    env.close()
    return out


def test_returns_equal_single_env_episodes_with_even_quotas():
    envs = make_vec_env("CartPole-v1", 2, seed=0, vector_mode="sync")
    returns = evaluate_returns(lean_controller, envs, 5, seed=7)
    envs.close()
    # sub-env 0 (seed 7) runs 3 episodes, sub-env 1 (seed 8) runs 2; order is order of completion
    expected = single_env_returns(7, 3) + single_env_returns(8, 2)
    assert len(returns) == 5 and sorted(returns) == sorted(expected)
    assert len(set(expected)) > 1   # not vacuous


def test_same_seed_same_returns_and_episode_count():
    a = greedy_returns(lean_controller, "CartPole-v1", 12, seed=3)
    b = greedy_returns(lean_controller, "CartPole-v1", 12, seed=3)
    assert len(a) == 12 and np.array_equal(a, b)
    assert a.mean() > 30   # the controller beats random play (~22)


def test_random_policy_is_near_22():
    rng = np.random.default_rng(0)
    r = greedy_returns(lambda obs: rng.integers(0, 2, len(obs)), "CartPole-v1", 40, seed=0)
    assert 12 < r.mean() < 35 and len(r) == 40
