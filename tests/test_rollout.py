"""Episode collection from vector envs: autoreset steps are never transitions."""
import numpy as np
import pytest

from tfpg.envs.make import make_vec_env
from tfpg.experience.collectors import EpisodeCollector
from tfpg.envs.stepping import VecStepper


@pytest.mark.parametrize("mode", ["sync", "vector_entry_point"])
def test_collected_episodes_match_gymnasium_statistics(mode):
    envs = make_vec_env("CartPole-v1", num_envs=4, seed=3, vector_mode=mode)
    rng = np.random.default_rng(0)
    stats = []
    stepper = VecStepper(envs, on_episode=lambda r, n: stats.extend(zip(r.tolist(), n.tolist())))
    collector = EpisodeCollector(stepper, lambda obs: rng.integers(0, 2, len(obs)),
                                 capacity=4)  # tiny rows: growth is exercised too
    batch = collector.collect(min_episodes=30)
    envs.close()
    # RecordEpisodeStatistics saw exactly the episodes we cut out, in order of completion.
    assert len(stats) == batch.num_episodes
    np.testing.assert_allclose(batch.episode_returns(), [r for r, _ in stats])
    np.testing.assert_array_equal(batch.lengths, [n for _, n in stats])
    # CartPole gives reward 1 per real transition: a stored autoreset step would show up as a 0.
    assert np.all(batch.rewards == 1.0)
    assert batch.terminated.all()  # random play never reaches the 500-step limit
    # No stored observation is a terminal one (|angle| > 12 deg or |x| > 2.4 would be terminal).
    assert np.all(np.abs(batch.observations[:, 2]) <= 0.2095) and np.all(np.abs(batch.observations[:, 0]) <= 2.4)
    # Every terminal (final) observation is outside the bounds.
    final = batch.final_observations
    assert np.all((np.abs(final[:, 2]) > 0.2094) | (np.abs(final[:, 0]) > 2.39))
    # Steps counted = steps in finished episodes + steps of episodes still running.
    assert stepper.env_steps == batch.num_steps + int(collector._len.sum())


def test_truncation_is_recorded_apart_from_termination():
    # A constant-action policy never survives long, but a tiny time limit truncates first.
    import gymnasium as gym
    from gymnasium.wrappers.vector import RecordEpisodeStatistics

    envs = RecordEpisodeStatistics(gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync",
                                                max_episode_steps=5))
    envs.reset(seed=0)
    collector = EpisodeCollector(VecStepper(envs), lambda obs: np.arange(len(obs)) % 2)
    batch = collector.collect(min_episodes=6)
    envs.close()
    assert (~batch.terminated).all() and (batch.lengths == 5).all()
