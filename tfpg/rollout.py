"""Stepping vector envs with one batched policy call per vector step, NEXT_STEP autoreset handled.

EpisodeCollector hands back complete episodes (policy gradient); TransitionStepper hands back
the single transitions of each vector step (replay-based methods such as DQN).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np


@dataclass
class EpisodeBatch:
    """E complete episodes, concatenated along the first axis (sum(lengths) steps)."""

    observations: np.ndarray        # (N, *obs_shape)
    actions: np.ndarray             # (N, *act_shape)
    rewards: np.ndarray             # (N,) float32
    lengths: np.ndarray             # (E,) int
    terminated: np.ndarray          # (E,) bool; False means truncated (time limit)
    final_observations: np.ndarray  # (E, *obs_shape): the observation after each episode's last step

    @property
    def num_steps(self) -> int:
        return int(self.lengths.sum())

    @property
    def num_episodes(self) -> int:
        return len(self.lengths)

    def episode_returns(self) -> np.ndarray:
        """Undiscounted sum of rewards per episode."""
        return np.add.reduceat(self.rewards, np.r_[0, np.cumsum(self.lengths)[:-1]]).astype(np.float64)


class EpisodeCollector:
    """Steps `envs` with `act` and hands back complete episodes.

    Each sub-env writes into its own preallocated row; an episode is cut out when it ends. With
    NEXT_STEP autoreset the step after an episode's end is a reset, so that step is not stored
    and not counted. Episodes still running when `collect` returns carry on into the next call
    (they continue under the updated policy, a small, usual staleness).

    `on_episode(returns, lengths)` receives gymnasium's RecordEpisodeStatistics figures.
    `to_env(actions)` turns the stored (scored) actions into what the env receives, e.g. a
    Gaussian sample clipped into the action bounds; the stored actions stay unclipped.
    """

    def __init__(self, envs: gym.vector.VectorEnv, act: Callable[[np.ndarray], np.ndarray],
                 on_episode: Callable[[np.ndarray, np.ndarray], None] | None = None,
                 capacity: int = 256, to_env: Callable[[np.ndarray], np.ndarray] | None = None):
        self.envs = envs
        self.act = act
        self.on_episode = on_episode
        self.to_env = to_env
        n = envs.num_envs
        obs_space, act_space = envs.single_observation_space, envs.single_action_space
        self._obs_buf = np.zeros((n, capacity, *obs_space.shape), dtype=obs_space.dtype)
        self._act_buf = np.zeros((n, capacity, *act_space.shape), dtype=act_space.dtype)
        self._rew_buf = np.zeros((n, capacity), dtype=np.float32)
        self._len = np.zeros(n, dtype=np.int64)
        self._rows = np.arange(n)
        self._resetting = np.zeros(n, dtype=bool)   # this sub-env's next step is an autoreset
        self._obs, _ = envs.reset()
        self.env_steps = 0

    def restart(self, seed: int) -> None:
        """Re-seed and reset every env, dropping the episodes in progress (used at checkpoints)."""
        self._obs, _ = self.envs.reset(seed=seed)
        self._len[:] = 0
        self._resetting[:] = False

    def _grow(self) -> None:
        self._obs_buf = np.concatenate([self._obs_buf, np.zeros_like(self._obs_buf)], axis=1)
        self._act_buf = np.concatenate([self._act_buf, np.zeros_like(self._act_buf)], axis=1)
        self._rew_buf = np.concatenate([self._rew_buf, np.zeros_like(self._rew_buf)], axis=1)

    def collect(self, min_episodes: int = 1, min_steps: int = 0) -> EpisodeBatch:
        """Step until at least `min_episodes` episodes with `min_steps` steps in all have ended."""
        done: list[tuple] = []
        steps_done = 0
        while len(done) < min_episodes or steps_done < min_steps:
            obs = self._obs
            actions = self.act(obs)
            next_obs, rewards, terminated, truncated, info = self.envs.step(
                actions if self.to_env is None else self.to_env(actions))
            live = ~self._resetting
            if live.all():
                rows, cols = self._rows, self._len
            else:
                rows = self._rows[live]
                cols = self._len[live]
            self._obs_buf[rows, cols] = obs[rows]
            self._act_buf[rows, cols] = actions[rows]
            self._rew_buf[rows, cols] = rewards[rows]
            self._len[rows] += 1
            self.env_steps += len(rows)
            ended = (terminated | truncated) & live
            for i in np.flatnonzero(ended):
                length = int(self._len[i])
                done.append((self._obs_buf[i, :length].copy(), self._act_buf[i, :length].copy(),
                             self._rew_buf[i, :length].copy(), bool(terminated[i]), next_obs[i].copy()))
                steps_done += length
                self._len[i] = 0
            self._resetting = ended
            self._obs = next_obs
            if self.on_episode is not None and "episode" in info:
                mask = info["_episode"]
                self.on_episode(info["episode"]["r"][mask], info["episode"]["l"][mask])
            if self._len.max() >= self._obs_buf.shape[1]:
                self._grow()
        obs, acts, rews, terms, finals = zip(*done)
        return EpisodeBatch(
            observations=np.concatenate(obs), actions=np.concatenate(acts), rewards=np.concatenate(rews),
            lengths=np.array([len(r) for r in rews], dtype=np.int64),
            terminated=np.array(terms, dtype=bool), final_observations=np.stack(finals),
        )


@dataclass
class TransitionBatch:
    """Transitions with their n-step targets (see `tfpg.returns.n_step_targets`).

    returns = partial_returns + bootstrap_discounts * bootstrap_mask * V(bootstrap_observations)
    """

    observations: np.ndarray
    actions: np.ndarray
    partial_returns: np.ndarray
    bootstrap_observations: np.ndarray
    bootstrap_discounts: np.ndarray
    bootstrap_mask: np.ndarray

    @property
    def num_steps(self) -> int:
        return len(self.actions)


class NStepCollector:
    """Steps `envs` with `act` and hands back transitions whose n-step window is complete.

    Keeps a time-major segment; a row's targets are computed once the n-1 following rows exist
    (or sooner in effect, since an episode end closes the window early). The last n-1 rows wait
    for the next call, so every transition is handed out exactly once and no episode has to
    finish first. Autoreset rows are not transitions and are dropped.
    """

    def __init__(self, envs: gym.vector.VectorEnv, act: Callable[[np.ndarray], np.ndarray], n: int, gamma: float,
                 on_episode: Callable[[np.ndarray, np.ndarray], None] | None = None,
                 to_env: Callable[[np.ndarray], np.ndarray] | None = None):
        self.envs, self.act, self.n, self.gamma, self.on_episode = envs, act, n, gamma, on_episode
        self.to_env = to_env
        self._obs, _ = envs.reset()
        self._rows: list[tuple] = []     # (obs, actions, rewards, terminated, truncated, valid)
        self._resetting = np.zeros(envs.num_envs, dtype=bool)
        self.env_steps = 0

    def restart(self, seed: int) -> None:
        """Re-seed and reset every env, dropping unfinished windows (used at checkpoints)."""
        self._obs, _ = self.envs.reset(seed=seed)
        self._rows = []
        self._resetting[:] = False

    def collect(self, min_transitions: int) -> TransitionBatch:
        ready = sum(int(row[5].sum()) for row in self._rows[: max(0, len(self._rows) - self.n + 1)])
        while ready < min_transitions:
            obs = self._obs
            actions = self.act(obs)
            next_obs, rewards, terminated, truncated, info = self.envs.step(
                actions if self.to_env is None else self.to_env(actions))
            valid = ~self._resetting
            self._rows.append((obs, actions, rewards.astype(np.float32), terminated & valid, truncated & valid, valid))
            self.env_steps += int(valid.sum())
            self._resetting = (terminated | truncated) & valid
            self._obs = next_obs
            if self.on_episode is not None and "episode" in info:
                mask = info["_episode"]
                self.on_episode(info["episode"]["r"][mask], info["episode"]["l"][mask])
            if len(self._rows) >= self.n:
                ready += int(self._rows[len(self._rows) - self.n][5].sum())
        from tfpg.returns import n_step_targets

        obs, actions, rewards, terminated, truncated, valid = (np.stack(x) for x in zip(*self._rows))
        targets = n_step_targets(rewards, terminated, truncated, self.gamma, self.n)
        m = len(targets.partial_returns)
        all_obs = np.concatenate([obs, self._obs[None]])   # row T = the current observation
        keep = valid[:m]
        env_index = np.broadcast_to(np.arange(valid.shape[1]), keep.shape)
        batch = TransitionBatch(
            observations=obs[:m][keep], actions=actions[:m][keep],
            partial_returns=targets.partial_returns[keep],
            bootstrap_observations=all_obs[targets.bootstrap_rows[keep], env_index[keep]],
            bootstrap_discounts=targets.bootstrap_discounts[keep], bootstrap_mask=targets.bootstrap_mask[keep])
        self._rows = self._rows[m:]
        return batch


@dataclass
class Transitions:
    """The real transitions of one vector step, one row per live sub-env."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray   # at an episode's end: its final observation, not the reset one
    terminated: np.ndarray
    truncated: np.ndarray
    env_ids: np.ndarray             # the sub-env each row came from (a pixel replay keeps per-env frame chains)

    def __len__(self) -> int:
        return len(self.rewards)


class TransitionStepper:
    """Steps `envs` one vector step at a time and returns that step's transitions (s, a, r, s').

    With NEXT_STEP autoreset the step that ends an episode returns the episode's final observation:
    that is the transition's s' whether the episode terminated or was truncated (a time-limit end
    still has a value to bootstrap from). The sub-env's following step is a reset, not a
    transition: it is dropped and not counted.

    `on_episode(returns, lengths)` receives gymnasium's RecordEpisodeStatistics figures.
    """

    def __init__(self, envs: gym.vector.VectorEnv,
                 on_episode: Callable[[np.ndarray, np.ndarray], None] | None = None):
        self.envs = envs
        self.on_episode = on_episode
        self.observations, _ = envs.reset()
        self._resetting = np.zeros(envs.num_envs, dtype=bool)   # this sub-env's next step is an autoreset
        self._env_ids = np.arange(envs.num_envs)
        self.env_steps = 0

    def restart(self, seed: int) -> None:
        """Re-seed and reset every env, dropping the episodes in progress (used at checkpoints)."""
        self.observations, _ = self.envs.reset(seed=seed)
        self._resetting[:] = False

    def step(self, actions: np.ndarray) -> Transitions:
        obs = self.observations
        next_obs, rewards, terminated, truncated, info = self.envs.step(actions)
        out = Transitions(obs, np.asarray(actions), rewards, next_obs, terminated, truncated, self._env_ids)
        live = ~self._resetting
        if not live.all():
            out = Transitions(*(np.asarray(a)[live] for a in (obs, actions, rewards, next_obs, terminated, truncated,
                                                              self._env_ids)))
        self.env_steps += len(out)
        self._resetting = (terminated | truncated) & live
        self.observations = next_obs
        if self.on_episode is not None and "episode" in info:
            mask = info["_episode"]
            self.on_episode(info["episode"]["r"][mask], info["episode"]["l"][mask])
        return out
