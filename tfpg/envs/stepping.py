"""The stepping core: one vector step at a time, NEXT_STEP autoreset handled in one place.

gymnasium's vector envs (NEXT_STEP mode) end an episode in one step, returning its final
observation with terminated/truncated set, and reset that sub-env on its *following* step (the
action is ignored, the reward is 0). That following step is not a transition: `Step.live` is
False for it. Every collector, the DQN loop and the evaluation use this class, so the rule is
written once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from tfpg.core.errors import ConfigError, EnvFailure, one_line


@dataclass
class Step:
    """One vector step, one row per sub-env; rows with live=False are autoresets, not transitions."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray   # at an episode's end: its final observation, not the reset one
    terminated: np.ndarray
    truncated: np.ndarray
    live: np.ndarray

    @property
    def ended(self) -> np.ndarray:
        """Sub-envs whose episode ended at this (real) step."""
        return (self.terminated | self.truncated) & self.live

    def transitions(self) -> dict[str, np.ndarray]:
        """The live rows as arrays (s, a, r, s', terminated, truncated, env_ids)."""
        rows = np.flatnonzero(self.live)
        keep = (lambda a: a) if len(rows) == len(self.live) else (lambda a: np.asarray(a)[rows])
        return dict(observations=keep(self.observations), actions=keep(self.actions), rewards=keep(self.rewards),
                    next_observations=keep(self.next_observations), terminated=keep(self.terminated),
                    truncated=keep(self.truncated), env_ids=rows)


def check_autoreset(envs: gym.vector.VectorEnv, env_id: str) -> None:
    """Refuse a vector env that does not declare NEXT_STEP autoreset (the step semantics assumed here)."""
    mode = envs.metadata.get("autoreset_mode")
    if mode != gym.vector.AutoresetMode.NEXT_STEP:
        said = "does not declare its autoreset mode" if mode is None else f"uses autoreset mode {mode}"
        raise ConfigError(f"{env_id}: its vector env {said}; tfpg needs NEXT_STEP autoreset "
                          "(use --vector-mode sync or async)")


class VecStepper:
    """Steps a vector env with NEXT_STEP autoreset; counts real transitions in `env_steps`.

    `on_episode(returns, lengths)` receives gymnasium's RecordEpisodeStatistics figures.
    `restart(seed)` re-seeds and resets every sub-env (after a checkpoint); objects that hold
    partial episodes register `on_restart` callbacks to drop them.
    An env that raises, or returns a non-finite float observation or reward, is an `EnvFailure` naming it.
    """

    def __init__(self, envs: gym.vector.VectorEnv, env_id: str = "",
                 on_episode: Callable[[np.ndarray, np.ndarray], None] | None = None, seed: int | None = None):
        check_autoreset(envs, env_id)
        self.envs = envs
        self.num_envs = envs.num_envs
        self.on_episode = on_episode
        self.on_restart: list[Callable[[], None]] = []
        self.env_id = env_id
        self.env_steps = 0
        self.observations = self._reset(seed)
        self._resetting = np.zeros(self.num_envs, dtype=bool)   # this sub-env's next step is an autoreset

    def restart(self, seed: int) -> None:
        self.observations = self._reset(seed)
        self._resetting[:] = False
        for callback in self.on_restart:
            callback()

    def step(self, actions: np.ndarray, env_actions: np.ndarray | None = None) -> Step:
        """Step every sub-env; `env_actions` (default `actions`) is what the envs receive, e.g. clipped."""
        try:
            next_obs, rewards, terminated, truncated, info = self.envs.step(actions if env_actions is None
                                                                            else env_actions)
        except Exception as e:   # the env's own code: one line naming it, for the loop to stop the run with
            raise self._failure("step() raised", e) from e
        self._check_finite("step()", next_obs, rewards)
        live = ~self._resetting
        step = Step(self.observations, np.asarray(actions), rewards, next_obs, terminated, truncated, live)
        self.env_steps += int(live.sum())
        self._resetting = step.ended
        self.observations = next_obs
        if self.on_episode is not None and "episode" in info:
            mask = info["_episode"]
            self.on_episode(info["episode"]["r"][mask], info["episode"]["l"][mask])
        return step

    def _reset(self, seed: int | None) -> np.ndarray:
        try:
            observations, _ = self.envs.reset(seed=seed)
        except Exception as e:
            raise self._failure("reset() raised", e) from e
        self._check_finite("reset()", observations)
        return observations

    def _check_finite(self, call: str, observations: np.ndarray, rewards: np.ndarray | None = None) -> None:
        """EnvFailure on a non-finite float observation or reward: one vectorised test each (integer and uint8
        observations cannot be non-finite)."""
        if observations.dtype.kind == "f" and not np.isfinite(observations).all():
            raise self._failure(f"{call} returned a non-finite observation")
        if rewards is not None and not np.isfinite(rewards).all():
            raise self._failure(f"{call} returned a non-finite reward")

    def _failure(self, what: str, error: Exception | None = None) -> EnvFailure:
        cause = "" if error is None else f": {type(error).__name__}: {one_line(error)}"
        return EnvFailure(f"{self.env_id or 'the env'}: {what} at env step {self.env_steps}{cause}")
