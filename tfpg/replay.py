"""Experience replay: a fixed-capacity FIFO of transitions in preallocated numpy arrays.

A vector step adds N transitions at once; sampling draws uniformly, with replacement, among the
slots written so far. `terminated` (no future value) is kept apart from `truncated` (a time limit
cut the episode; the next observation still has a value), so the TD target can bootstrap through
truncations.
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np


@dataclass
class TransitionBatch:
    """Arrays of shape (*batch_shape, ...) drawn from a ReplayBuffer."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray             # float32
    next_observations: np.ndarray   # the observation the action led to (the final one at an episode's end)
    terminated: np.ndarray          # bool
    truncated: np.ndarray           # bool


class ReplayBuffer:
    """Ring buffer of (s, a, r, s', terminated, truncated).

    Observations keep the observation space's dtype (uint8 Atari frames stay uint8); actions keep
    the action space's dtype. Once full, each new transition overwrites the oldest.
    """

    def __init__(self, capacity: int, observation_space: gym.Space, action_space: gym.Space, seed: int = 0):
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        obs_shape, obs_dtype = observation_space.shape, observation_space.dtype
        self.observations = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_observations = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((capacity, *action_space.shape), dtype=action_space.dtype)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.truncated = np.zeros(capacity, dtype=bool)
        self.position = 0   # the slot the next transition goes to
        self.size = 0       # slots holding a transition
        self.added = 0      # transitions added in all, overwritten ones included
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, observations, actions, rewards, next_observations, terminated, truncated) -> None:
        """Add a batch of n transitions (n <= capacity), e.g. the live sub-envs of one vector step."""
        n = len(rewards)
        if n == 0:
            return
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}")
        slots = (self.position + np.arange(n)) % self.capacity
        self.observations[slots] = observations
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.next_observations[slots] = next_observations
        self.terminated[slots] = terminated
        self.truncated[slots] = truncated
        self.position = int((self.position + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        self.added += n

    FIELDS = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated")

    def state(self) -> dict[str, np.ndarray]:
        """The filled part of the buffer, its counters and its sampling RNG, as plain arrays (for checkpoints)."""
        from tfpg.checkpoint import rng_state_to_array

        return {**{name: getattr(self, name)[: self.size] for name in self.FIELDS},
                "counters": np.array([self.position, self.size, self.added], dtype=np.int64),
                "rng": rng_state_to_array(self.rng)}

    def load(self, state: dict[str, np.ndarray]) -> None:
        from tfpg.checkpoint import rng_state_from_array

        self.position, self.size, self.added = (int(x) for x in state["counters"])
        if self.size > self.capacity:
            raise ValueError(f"a replay state of {self.size} transitions does not fit capacity {self.capacity}")
        for name in self.FIELDS:
            getattr(self, name)[: self.size] = state[name]
        rng_state_from_array(self.rng, state["rng"])

    def sample(self, batch_size: int, num_batches: int | None = None) -> TransitionBatch:
        """Uniform draws among filled slots: shape (batch_size, ...), or (num_batches, batch_size, ...)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        shape = (batch_size,) if num_batches is None else (num_batches, batch_size)
        # Filled slots are always 0..size-1: the buffer fills from slot 0 and only wraps once full.
        idx = self.rng.integers(0, self.size, size=shape)
        return TransitionBatch(self.observations[idx], self.actions[idx], self.rewards[idx],
                               self.next_observations[idx], self.terminated[idx], self.truncated[idx])
