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

from tfpg.core.errors import ConfigError


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
    """

    def __init__(self, envs: gym.vector.VectorEnv, env_id: str = "",
                 on_episode: Callable[[np.ndarray, np.ndarray], None] | None = None, seed: int | None = None):
        check_autoreset(envs, env_id)
        self.envs = envs
        self.num_envs = envs.num_envs
        self.on_episode = on_episode
        self.on_restart: list[Callable[[], None]] = []
        self.observations, _ = envs.reset(seed=seed)
        self._resetting = np.zeros(self.num_envs, dtype=bool)   # this sub-env's next step is an autoreset
        self.env_steps = 0

    def restart(self, seed: int) -> None:
        self.observations, _ = self.envs.reset(seed=seed)
        self._resetting[:] = False
        for callback in self.on_restart:
            callback()

    def step(self, actions: np.ndarray, env_actions: np.ndarray | None = None) -> Step:
        """Step every sub-env; `env_actions` (default `actions`) is what the envs receive, e.g. clipped."""
        next_obs, rewards, terminated, truncated, info = self.envs.step(actions if env_actions is None
                                                                        else env_actions)
        live = ~self._resetting
        step = Step(self.observations, np.asarray(actions), rewards, next_obs, terminated, truncated, live)
        self.env_steps += int(live.sum())
        self._resetting = step.ended
        self.observations = next_obs
        if self.on_episode is not None and "episode" in info:
            mask = info["_episode"]
            self.on_episode(info["episode"]["r"][mask], info["episode"]["l"][mask])
        return step
