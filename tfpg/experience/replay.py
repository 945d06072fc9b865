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

    def add(self, observations, actions, rewards, next_observations, terminated, truncated, env_ids=None) -> None:
        """Add a batch of n transitions (n <= capacity), e.g. the live sub-envs of one vector step.

        `env_ids` (which sub-env each came from) is accepted for PixelReplayBuffer's sake and not needed here.
        """
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
        from tfpg.core.checkpoint import rng_state_to_array

        return {**{name: getattr(self, name)[: self.size] for name in self.FIELDS},
                "counters": np.array([self.position, self.size, self.added], dtype=np.int64),
                "rng": rng_state_to_array(self.rng)}

    def load(self, state: dict[str, np.ndarray]) -> None:
        from tfpg.core.checkpoint import rng_state_from_array

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


class PixelReplayBuffer:
    """Replay for stacked frames that stores each 84x84 frame once and rebuilds the stacks on sampling.

    One ring of frames per sub-env (capacity / num_envs frames each), so each env's frames form
    chains in order. Frame f (absolute index a in its env's ring) carries:
      start[a]          the absolute index of its chain's first frame (an episode start),
      is_transition[a]  whether a transition (s_a, action, reward, s'_a) leaves from it.
    The observation of a transition at a is the stack of frames max(start, a-3) .. a, the left
    padded with the chain's first frame, which is what FrameStackObservation yields after a reset
    (padding_type "reset": four copies of the reset frame); s' is the stack at a+1, whose newest
    frame is written with the transition, so s' costs nothing more except at an episode's end
    (its final frame occupies a slot that no transition leaves from).

    A transition continues its env's chain when its s equals the stack at the chain's last frame;
    otherwise (a new episode, or a reset after a checkpoint) a new chain starts with the frames of
    s that are not left padding. Sampling rejects the few oldest transitions whose frames have
    been partly overwritten. Memory: one frame plus ~30 bytes per slot (`bytes_per_transition`).

    Same interface as ReplayBuffer: add / sample / len / state / load.
    """

    FIELDS = ("frames", "actions", "rewards", "terminated", "truncated", "is_transition", "abs_index", "start",
              "written", "chain_end")

    def __init__(self, capacity: int, observation_space: gym.Space, action_space: gym.Space, seed: int = 0,
                 num_envs: int = 1):
        self.stack, *frame_shape = observation_space.shape
        self.ring = -(-capacity // num_envs)     # frames per env (ceil)
        if self.ring < 4 * self.stack:
            raise ValueError(f"a pixel replay of {capacity} frames over {num_envs} envs leaves {self.ring} per env; "
                             f"it needs at least {4 * self.stack}")
        self.capacity, self.num_envs = capacity, num_envs
        shape = (num_envs, self.ring)
        self.frames = np.zeros((*shape, *frame_shape), dtype=observation_space.dtype)
        self.actions = np.zeros((*shape, *action_space.shape), dtype=action_space.dtype)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.truncated = np.zeros(shape, dtype=bool)
        self.is_transition = np.zeros(shape, dtype=bool)
        self.abs_index = np.zeros(shape, dtype=np.int64)
        self.start = np.zeros(shape, dtype=np.int64)
        self.written = np.zeros(num_envs, dtype=np.int64)      # frames written per env so far
        self.chain_end = np.full(num_envs, -1, dtype=np.int64)  # absolute index of the open chain's last frame; -1: none
        self.added = 0
        self.rng = np.random.default_rng(seed)

    @property
    def bytes_per_transition(self) -> float:
        """Memory of the whole buffer divided by its capacity (one frame plus per-slot fields)."""
        return sum(getattr(self, name).nbytes for name in self.FIELDS) / self.capacity

    def __len__(self) -> int:
        """Transitions that can be sampled: those held, less the few oldest whose stack lost frames."""
        if self.added == 0:
            return 0
        broken = 0
        for k in range(self.num_envs):
            first = int(self.written[k]) - self.ring   # the oldest absolute frame index still in the ring
            if first > 0:
                slots = self._slots(np.arange(first, first + self.stack - 1))
                broken += int(np.sum(~self._valid(np.full(len(slots), k), slots) & self.is_transition[k, slots]))
        return int(self.is_transition.sum()) - broken

    def _slots(self, abs_indices):
        return np.asarray(abs_indices) % self.ring

    def _stack_indices(self, start, newest):
        """Absolute frame indices of the stack ending at `newest`, left-padded with `start`: (..., stack)."""
        offsets = np.arange(-self.stack + 1, 1)
        return np.maximum(np.asarray(start)[..., None], np.asarray(newest)[..., None] + offsets)

    def _write_frame(self, env: int, frame, start: int) -> int:
        a = int(self.written[env])
        j = a % self.ring
        self.frames[env, j] = frame
        self.is_transition[env, j] = False
        self.abs_index[env, j] = a
        self.start[env, j] = start
        self.written[env] = a + 1
        return a

    def _continues_chain(self, env: int, obs) -> bool:
        end = int(self.chain_end[env])
        if end < 0:
            return False
        start = int(self.start[env, end % self.ring])
        return np.array_equal(self.frames[env, self._slots(self._stack_indices(start, end))], obs)

    def add(self, observations, actions, rewards, next_observations, terminated, truncated, env_ids=None) -> None:
        """Add the transitions of one vector step; `env_ids[i]` is the sub-env transition i came from."""
        n = len(rewards)
        env_ids = np.arange(n) if env_ids is None else np.asarray(env_ids)
        for i in range(n):
            k, obs = int(env_ids[i]), observations[i]
            if self._continues_chain(k, obs):
                a = int(self.chain_end[k])
            else:
                # New chain: skip the left padding (leading copies of the first frame but the last one).
                first = 0
                while first + 1 < self.stack and np.array_equal(obs[first + 1], obs[0]):
                    first += 1
                start = int(self.written[k])
                for frame in obs[first:]:
                    a = self._write_frame(k, frame, start)
            j = a % self.ring
            start = int(self.start[k, j])
            self.is_transition[k, j] = True
            self.actions[k, j] = actions[i]
            self.rewards[k, j] = rewards[i]
            self.terminated[k, j] = terminated[i]
            self.truncated[k, j] = truncated[i]
            nxt = self._write_frame(k, next_observations[i][-1], start)   # s' = the stack at a + 1
            self.chain_end[k] = -1 if (terminated[i] or truncated[i]) else nxt
            self.added += 1

    def _valid(self, env, slot):
        """A transition whose stack frames and next frame are all still in the ring."""
        oldest = np.maximum(self.start[env, slot], self.abs_index[env, slot] - self.stack + 1)
        return self.is_transition[env, slot] & (oldest >= self.written[env] - self.ring)

    def sample(self, batch_size: int, num_batches: int | None = None) -> TransitionBatch:
        """Uniform draws among stored transitions: shape (batch_size, ...) or (num_batches, batch_size, ...)."""
        if self.added == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        shape = (batch_size,) if num_batches is None else (num_batches, batch_size)
        m = int(np.prod(shape))
        filled = np.minimum(self.written, self.ring)
        cumulative = np.cumsum(filled)
        env, slot = np.empty(0, np.int64), np.empty(0, np.int64)
        while len(env) < m:   # uniform over filled slots, rejecting those no valid transition leaves from
            u = self.rng.integers(0, cumulative[-1], size=2 * (m - len(env)) + 8)
            k = np.searchsorted(cumulative, u, side="right")
            j = u - (cumulative[k] - filled[k])
            ok = self._valid(k, j)
            env, slot = np.concatenate([env, k[ok]]), np.concatenate([slot, j[ok]])
        env, slot = env[:m], slot[:m]
        start, a = self.start[env, slot], self.abs_index[env, slot]
        obs = self.frames[env[:, None], self._slots(self._stack_indices(start, a))]
        next_obs = self.frames[env[:, None], self._slots(self._stack_indices(start, a + 1))]
        return TransitionBatch(*(x.reshape(*shape, *x.shape[1:]) for x in (
            obs, self.actions[env, slot], self.rewards[env, slot], next_obs,
            self.terminated[env, slot], self.truncated[env, slot])))

    def state(self) -> dict[str, np.ndarray]:
        """Every array, the counters and the sampling RNG (for checkpoints; about capacity x 7 KB for Atari)."""
        from tfpg.core.checkpoint import rng_state_to_array

        return {**{name: getattr(self, name) for name in self.FIELDS},
                "added": np.int64(self.added), "rng": rng_state_to_array(self.rng)}

    def load(self, state: dict[str, np.ndarray]) -> None:
        from tfpg.core.checkpoint import rng_state_from_array

        if state["frames"].shape != self.frames.shape:
            raise ValueError(f"a pixel replay state of shape {state['frames'].shape} does not fit {self.frames.shape}")
        for name in self.FIELDS:
            getattr(self, name)[...] = state[name]
        self.added = int(state["added"])
        rng_state_from_array(self.rng, state["rng"])
