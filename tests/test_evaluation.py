"""Greedy evaluation: episode k starts from reset seed `seed + k`, whatever the vector layout."""
import gymnasium as gym
import numpy as np

from tfpg.envs.make import make_vec_env
from tfpg.training.evaluation import EVAL_SEED, MAX_EVAL_ENVS, evaluate_returns, greedy_returns


def lean_controller(obs):
    """Push towards the side the pole leans to: long, varied episodes without any training."""
    obs = np.atleast_2d(obs)
    return (obs[:, 2] > 0).astype(np.int64)


def single_env_return(seed):
    """One episode in a plain gym.make env reset with `seed`: the brute-force reference."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, r, term, trunc, _ = env.step(int(lean_controller(obs)[0]))
        total += r
        done = term or trunc
    env.close()
    return total


def test_episode_k_is_the_single_env_episode_from_seed_plus_k():
    episodes = MAX_EVAL_ENVS + 4   # two rounds, the second one partly used
    returns = greedy_returns(lean_controller, "CartPole-v1", episodes, seed=7)
    expected = [single_env_return(7 + k) for k in range(episodes)]
    np.testing.assert_array_equal(returns, expected)
    assert len(set(expected)) > 3   # not vacuous: the start states differ


def test_the_vector_layout_does_not_change_the_returns():
    envs = make_vec_env("CartPole-v1", 3, seed=0, vector_mode="sync")
    three = evaluate_returns(lean_controller, envs, 7, seed=EVAL_SEED)
    envs.close()
    np.testing.assert_array_equal(three, greedy_returns(lean_controller, "CartPole-v1", 7))
    assert greedy_returns(lean_controller, "CartPole-v1", 12).mean() > 30   # the controller beats random (~22)


def test_random_policy_is_near_22():
    rng = np.random.default_rng(0)
    r = greedy_returns(lambda obs: rng.integers(0, 2, len(obs)), "CartPole-v1", 40, seed=0)
    assert 12 < r.mean() < 35 and len(r) == 40
