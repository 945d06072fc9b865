"""Collectors built on the stepping core (`tfpg.envs.stepping.VecStepper`), one batched policy call per vector step.

EpisodeCollector hands back complete episodes (REINFORCE); NStepCollector hands back transitions
with n-step targets as soon as their window is complete (the book's vanilla PG);
FixedHorizonCollector hands back T vector steps of N envs as (T, N) arrays, episodes cut anywhere
(A2C, PPO, TRPO);
TransitionCollector hands back the plain transitions of some vector steps (replay-based methods).

The same collectors run on Ray rollout workers (`tfpg.backends.ray.workers`): each worker runs the
algorithm's kind of collector on its own envs. What that needs of a collector class:
  split_request(request, workers) -> the request each worker serves (e.g. ceil(episodes / N) each)
  its batch class's concatenate(batches) -> one batch of the workers' batches, in worker order
  streams (class attribute) -> True: its batches go to the learner through a queue as they are
                               made (replay); False: the learner waits for every worker (on-policy)
The fixed-horizon collector (T vector steps of every env, for PPO/A2C/TRPO) has every worker serve
the request unchanged (T steps of its own M envs) and joins the rollouts along the env axis, so N
workers hand back what one collector with N x M envs would (column w*M + j is worker w's env j).

`act(observations)` returns the actions to store and score; `to_env(actions)` what the envs
receive (e.g. a Gaussian sample clipped into the action bounds; the stored actions stay unclipped).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfpg.maths.returns import n_step_targets
from tfpg.envs.stepping import Step, VecStepper

Act = Callable[[np.ndarray], np.ndarray]


def share_counts(request: dict, workers: int) -> dict:
    """Each worker's part of a request of counts: ceil(count / workers), so the workers together serve it."""
    return {key: math.ceil(value / workers) for key, value in request.items()}


def same_request(request: dict, workers: int) -> dict:
    """Each worker serves the whole request (a fixed horizon: T vector steps of its own envs)."""
    return dict(request)


def concatenate_rows(cls, batches: list):
    """One batch of class `cls` whose every field is the fields of `batches` joined along the first axis."""
    return cls(**{f.name: np.concatenate([getattr(b, f.name) for b in batches]) for f in dataclasses.fields(cls)})


def _step(stepper: VecStepper, act: Act, to_env: Act | None) -> Step:
    actions = act(stepper.observations)
    return stepper.step(actions, None if to_env is None else to_env(actions))


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

    @classmethod
    def concatenate(cls, batches: list[EpisodeBatch]) -> EpisodeBatch:
        return concatenate_rows(cls, batches)


class EpisodeCollector:
    """Hands back complete episodes.

    Each sub-env writes into its own preallocated row; an episode is cut out when it ends.
    Episodes still running when `collect` returns carry on into the next call (they continue
    under the updated policy, a small, usual staleness); a restart of the stepper drops them.
    """

    streams = False
    split_request = staticmethod(share_counts)

    def __init__(self, stepper: VecStepper, act: Act, to_env: Act | None = None, capacity: int = 256):
        self.stepper, self.act, self.to_env = stepper, act, to_env
        envs = stepper.envs
        n = stepper.num_envs
        obs_space, act_space = envs.single_observation_space, envs.single_action_space
        self._obs_buf = np.zeros((n, capacity, *obs_space.shape), dtype=obs_space.dtype)
        self._act_buf = np.zeros((n, capacity, *act_space.shape), dtype=act_space.dtype)
        self._rew_buf = np.zeros((n, capacity), dtype=np.float32)
        self._len = np.zeros(n, dtype=np.int64)
        self._rows = np.arange(n)
        stepper.on_restart.append(self._drop_partial)

    def _drop_partial(self) -> None:
        self._len[:] = 0

    def _grow(self) -> None:
        self._obs_buf = np.concatenate([self._obs_buf, np.zeros_like(self._obs_buf)], axis=1)
        self._act_buf = np.concatenate([self._act_buf, np.zeros_like(self._act_buf)], axis=1)
        self._rew_buf = np.concatenate([self._rew_buf, np.zeros_like(self._rew_buf)], axis=1)

    def _store(self, step: Step) -> None:
        rows = self._rows if step.live.all() else self._rows[step.live]
        cols = self._len[rows]
        self._obs_buf[rows, cols] = step.observations[rows]
        self._act_buf[rows, cols] = step.actions[rows]
        self._rew_buf[rows, cols] = step.rewards[rows]
        self._len[rows] += 1

    def collect(self, min_episodes: int = 1, min_steps: int = 0) -> EpisodeBatch:
        """Step until at least `min_episodes` episodes with `min_steps` steps in all have ended."""
        done: list[tuple] = []
        steps_done = 0
        while len(done) < min_episodes or steps_done < min_steps:
            step = _step(self.stepper, self.act, self.to_env)
            self._store(step)
            for i in np.flatnonzero(step.ended):
                length = int(self._len[i])
                done.append((self._obs_buf[i, :length].copy(), self._act_buf[i, :length].copy(),
                             self._rew_buf[i, :length].copy(), bool(step.terminated[i]),
                             step.next_observations[i].copy()))
                steps_done += length
                self._len[i] = 0
            if self._len.max() >= self._obs_buf.shape[1]:
                self._grow()
        obs, acts, rews, terms, finals = zip(*done)
        return EpisodeBatch(
            observations=np.concatenate(obs), actions=np.concatenate(acts), rewards=np.concatenate(rews),
            lengths=np.array([len(r) for r in rews], dtype=np.int64),
            terminated=np.array(terms, dtype=bool), final_observations=np.stack(finals),
        )


@dataclass
class NStepBatch:
    """Transitions with their n-step targets (see `tfpg.maths.returns.n_step_targets`).

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

    @classmethod
    def concatenate(cls, batches: list[NStepBatch]) -> NStepBatch:
        return concatenate_rows(cls, batches)


class NStepCollector:
    """Hands back transitions whose n-step window is complete.

    Keeps a time-major segment; a row's targets are computed once the n-1 following rows exist
    (an episode end closes the window early). The last n-1 rows wait for the next call, so every
    transition is handed out exactly once and no episode has to finish first. Autoreset rows are
    not transitions and are dropped.
    """

    streams = False
    split_request = staticmethod(share_counts)

    def __init__(self, stepper: VecStepper, act: Act, n: int, gamma: float, to_env: Act | None = None):
        self.stepper, self.act, self.n, self.gamma, self.to_env = stepper, act, n, gamma, to_env
        self._rows: list[Step] = []
        stepper.on_restart.append(self._drop_partial)

    def _drop_partial(self) -> None:
        self._rows = []

    def _ready(self) -> int:
        """Transitions whose window is complete: those of all rows but the last n-1."""
        return sum(int(row.live.sum()) for row in self._rows[: max(0, len(self._rows) - self.n + 1)])

    def collect(self, min_transitions: int) -> NStepBatch:
        ready = self._ready()
        while ready < min_transitions:
            self._rows.append(_step(self.stepper, self.act, self.to_env))
            if len(self._rows) >= self.n:
                ready += int(self._rows[len(self._rows) - self.n].live.sum())
        rows = self._rows
        live = np.stack([r.live for r in rows])
        rewards = np.stack([r.rewards for r in rows]).astype(np.float32)
        targets = n_step_targets(rewards, np.stack([r.terminated for r in rows]) & live,
                                 np.stack([r.truncated for r in rows]) & live, self.gamma, self.n)
        m = len(targets.partial_returns)
        # Row T of the observations is the current one: the bootstrap state of the newest windows.
        all_obs = np.stack([r.observations for r in rows] + [self.stepper.observations])
        keep = live[:m]
        env_index = np.broadcast_to(np.arange(live.shape[1]), keep.shape)
        batch = NStepBatch(
            observations=all_obs[:m][keep], actions=np.stack([r.actions for r in rows[:m]])[keep],
            partial_returns=targets.partial_returns[keep],
            bootstrap_observations=all_obs[targets.bootstrap_rows[keep], env_index[keep]],
            bootstrap_discounts=targets.bootstrap_discounts[keep], bootstrap_mask=targets.bootstrap_mask[keep])
        self._rows = rows[m:]
        return batch


@dataclass
class Rollout:
    """T vector steps of N envs, time-major: row t, column i is what sub-env i did at vector step t.

    Rows with live = False are NEXT_STEP autoresets (the action was ignored, the reward is 0), not
    transitions. Because of that rule, the observation that follows step (t, i) is always
    observations[t + 1, i] (last_observations[i] for t = T - 1): at an episode's end it is the
    episode's final observation, which the autoreset row holds. So V(final observation), the
    bootstrap of a time-limit truncation, is the value of the next row (`next_observations`).
    """

    observations: np.ndarray        # (T, N, *obs_shape)
    actions: np.ndarray             # (T, N, *act_shape), as stored and scored (unclipped)
    rewards: np.ndarray             # (T, N) float32
    terminated: np.ndarray          # (T, N) bool
    truncated: np.ndarray           # (T, N) bool
    live: np.ndarray                # (T, N) bool, False for autoreset rows
    last_observations: np.ndarray   # (N, *obs_shape): the observation after the cut

    @property
    def horizon(self) -> int:
        return len(self.rewards)

    @property
    def num_transitions(self) -> int:
        return int(self.live.sum())

    def next_observations(self) -> np.ndarray:
        """(T, N, *obs_shape): s_{t+1} of every row, the final observation where an episode ended."""
        return np.concatenate([self.observations[1:], self.last_observations[None]], axis=0)

    @classmethod
    def concatenate(cls, rollouts: list[Rollout]) -> Rollout:
        """The rollouts of the same horizon side by side: (T, N_1 + N_2 + ...), env columns in list order."""
        return cls(**{f.name: np.concatenate([getattr(r, f.name) for r in rollouts],
                                             axis=0 if f.name == "last_observations" else 1)
                      for f in dataclasses.fields(cls)})


class FixedHorizonCollector:
    """Hands back a `Rollout` of `horizon` vector steps per call, into arrays allocated once.

    Episodes run on across calls (the cut is bootstrapped by the algorithm from last_observations)
    and nothing is held between calls besides the stepper's current observations, so a
    `stepper.restart` (the trainer re-seeding the envs at a checkpoint) needs no callback: the next
    call starts from the restarted envs' first observations. The arrays are reused: a caller that
    keeps a rollout past the next call must copy it.
    """

    streams = False
    split_request = staticmethod(same_request)

    def __init__(self, stepper: VecStepper, act: Act, horizon: int, to_env: Act | None = None):
        self.stepper, self.act, self.horizon, self.to_env = stepper, act, horizon, to_env
        # Allocated by the first collect(): a learner whose rollout workers collect never needs it (with many
        # workers' frames it would be a large unused array).
        self.rollout: Rollout | None = None

    def _allocate(self) -> Rollout:
        envs, n, horizon = self.stepper.envs, self.stepper.num_envs, self.horizon
        obs_space, act_space = envs.single_observation_space, envs.single_action_space
        action_dtype = np.float32 if act_space.dtype == np.float64 else act_space.dtype
        return Rollout(
            observations=np.zeros((horizon, n, *obs_space.shape), dtype=obs_space.dtype),
            actions=np.zeros((horizon, n, *act_space.shape), dtype=action_dtype),
            rewards=np.zeros((horizon, n), dtype=np.float32), terminated=np.zeros((horizon, n), dtype=bool),
            truncated=np.zeros((horizon, n), dtype=bool), live=np.zeros((horizon, n), dtype=bool),
            last_observations=np.zeros((n, *obs_space.shape), dtype=obs_space.dtype))

    def collect(self) -> Rollout:
        """Step every sub-env `horizon` times with one batched `act` call per vector step."""
        if self.rollout is None:
            self.rollout = self._allocate()
        r = self.rollout
        for t in range(self.horizon):
            step = _step(self.stepper, self.act, self.to_env)
            r.observations[t] = step.observations
            r.actions[t] = step.actions
            r.rewards[t] = step.rewards
            r.terminated[t] = step.terminated
            r.truncated[t] = step.truncated
            r.live[t] = step.live
        r.last_observations[:] = self.stepper.observations
        return r


@dataclass
class Transitions:
    """The live transitions of `vector_steps` consecutive vector steps, in time order (see `Step.transitions`)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    env_ids: np.ndarray             # which sub-env each came from
    vector_steps: int = 1

    def arrays(self) -> dict[str, np.ndarray]:
        """What a replay buffer's add() takes."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "vector_steps"}


class TransitionCollector:
    """Hands back the transitions of `vector_steps` vector steps; `act(observations, **request)`, e.g.
    an epsilon-greedy policy given `epsilon`. On workers its batches stream to the learner's replay."""

    streams = True

    def __init__(self, stepper: VecStepper, act: Callable[..., np.ndarray]):
        self.stepper, self.act = stepper, act

    def collect(self, vector_steps: int = 1, **request) -> Transitions:
        steps = [self.stepper.step(self.act(self.stepper.observations, **request)).transitions()
                 for _ in range(vector_steps)]
        if vector_steps == 1:
            return Transitions(**steps[0])
        return Transitions(**{key: np.concatenate([s[key] for s in steps]) for key in steps[0]},
                           vector_steps=vector_steps)
