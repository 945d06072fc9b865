"""Replay buffer: FIFO wrap-around, sampling of filled slots only, dtypes, terminated apart from truncated."""
import gymnasium as gym
import numpy as np
import pytest

from tfpg.experience.replay import ReplayBuffer

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)


def add_numbered(buffer, start, n):
    """n transitions whose every field encodes its number k = start..start+n-1."""
    k = np.arange(start, start + n)
    buffer.add(np.repeat(k[:, None], 3, 1).astype(np.float32), k % 2, k.astype(np.float32),
               np.repeat(k[:, None] + 0.5, 3, 1).astype(np.float32), k % 3 == 0, k % 3 == 1)
    return k


def test_wraps_around_fifo_at_capacity():
    buffer = ReplayBuffer(5, OBS_SPACE, gym.spaces.Discrete(2))
    add_numbered(buffer, 0, 3)
    assert len(buffer) == 3 and buffer.position == 3
    add_numbered(buffer, 3, 4)   # 0..6: 0 and 1 overwritten by 5 and 6
    assert len(buffer) == 5 and buffer.position == 2 and buffer.added == 7
    np.testing.assert_array_equal(buffer.rewards, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.observations[:, 0], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.next_observations[:, 0], [5.5, 6.5, 2.5, 3.5, 4.5])
    add_numbered(buffer, 7, 5)   # exactly one capacity: everything replaced, position unchanged
    np.testing.assert_array_equal(buffer.rewards, [10, 11, 7, 8, 9])
    assert buffer.position == 2
    with pytest.raises(ValueError):
        add_numbered(buffer, 0, 6)


def test_samples_only_filled_slots_and_rows_stay_together():
    buffer = ReplayBuffer(1000, OBS_SPACE, gym.spaces.Discrete(2), seed=0)
    add_numbered(buffer, 1, 10)   # rewards 1..10 in slots 0..9; unfilled slots hold reward 0
    batch = buffer.sample(4000)
    assert set(np.unique(batch.rewards)) == set(range(1, 11))   # every filled slot, no empty one
    k = batch.rewards
    np.testing.assert_array_equal(batch.observations[:, 0], k)
    np.testing.assert_array_equal(batch.next_observations[:, 2], k + 0.5)
    np.testing.assert_array_equal(batch.actions, k % 2)
    np.testing.assert_array_equal(batch.terminated, k % 3 == 0)
    np.testing.assert_array_equal(batch.truncated, k % 3 == 1)
    stacked = buffer.sample(8, num_batches=3)
    assert stacked.observations.shape == (3, 8, 3) and stacked.terminated.shape == (3, 8)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, OBS_SPACE, gym.spaces.Discrete(2)).sample(2)


def test_dtypes_follow_the_spaces():
    image_space = gym.spaces.Box(0, 255, (4, 6, 6), np.uint8)
    buffer = ReplayBuffer(8, image_space, gym.spaces.Discrete(6))
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 6, 6), dtype=np.uint8)
    buffer.add(frames, np.array([5, 1]), np.array([1.0, -1.0]), frames[::-1], np.array([True, False]),
               np.array([False, True]))
    batch = buffer.sample(3)
    assert batch.observations.dtype == np.uint8 and batch.next_observations.dtype == np.uint8
    assert batch.actions.dtype == gym.spaces.Discrete(6).dtype
    assert batch.rewards.dtype == np.float32
    assert batch.terminated.dtype == bool and batch.truncated.dtype == bool
    np.testing.assert_array_equal(buffer.observations[:2], frames)


def test_terminated_and_truncated_are_stored_apart():
    buffer = ReplayBuffer(4, OBS_SPACE, gym.spaces.Discrete(2))
    obs = np.zeros((3, 3), np.float32)
    buffer.add(obs, [0, 1, 0], [1, 1, 1], obs, [True, False, False], [False, True, False])
    np.testing.assert_array_equal(buffer.terminated[:3], [True, False, False])
    np.testing.assert_array_equal(buffer.truncated[:3], [False, True, False])
