"""Atari (ALE) environments with the DQN-paper preprocessing, built from gymnasium's own wrappers.

One sub-env, inside out:

    gym.make(id, frameskip=1, repeat_action_probability=0.0, full_action_space=False)
        the NoFrameskip-v4 protocol of the published DQN/PPO numbers: every emulator frame is
        seen by the wrappers and there are no sticky actions (the -v5 defaults are frameskip 4
        and sticky actions 0.25, which AtariPreprocessing would then skip on top of)
    -> AtariPreprocessing(noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True,
                          terminal_on_life_loss=<option>, scale_obs=False)
        up to 30 no-op actions at reset, the action repeated for 4 frames, the max of the last two
        frames (Atari sprites flicker), grey 84x84 uint8
    -> FrameStackObservation(4)
        obs uint8 (4, 84, 84), oldest frame first; at reset the stack holds four copies of the
        reset frame (gymnasium 1.x padding_type="reset")

The vector env built over such sub-envs is wrapped (in `tfpg.envs.make.make_vec_env`) by
RecordEpisodeStatistics first and only then, for training, by a reward transform r -> sign(r):
the logged `reward`/`reward_100` is the real game score, the learner sees clipped rewards.
Evaluation envs are never clipped. Observations stay uint8 until inside the model.
"""
from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

from tfpg.core.errors import ConfigError

FRAME_SKIP = 4
FRAME_STACK = 4
SCREEN_SIZE = 84
NOOP_MAX = 30
VECTOR_ENTRY_POINT_REFUSED = ("{env_id}: tfpg builds Atari envs from gymnasium's wrappers (ale-py's C++ vector env pads "
                              "episode starts with black frames instead of the reset frame); use --vector-mode auto, "
                              "sync or async")


def is_atari(spec: gym.envs.registration.EnvSpec) -> bool:
    """Whether a registered env is an ALE game (ale_py's AtariEnv entry point)."""
    entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
    return str(entry).startswith("ale_py")


def make_atari_env(env_id: str, terminal_on_life_loss: bool = False, render_mode: str | None = None,
                   env_kwargs: dict | None = None) -> gym.Env:
    """One preprocessed ALE env: uint8 observations (4, 84, 84), unclipped rewards; `env_kwargs` (e.g. mode,
    difficulty) go to ale_py's constructor."""
    env = gym.make(env_id, **{"frameskip": 1, "repeat_action_probability": 0.0, "full_action_space": False,
                              **(env_kwargs or {}), "render_mode": render_mode})
    env = AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=SCREEN_SIZE,
                             grayscale_obs=True, terminal_on_life_loss=terminal_on_life_loss, scale_obs=False)
    return FrameStackObservation(env, FRAME_STACK)


def make_atari_vec_env(env_id: str, num_envs: int, vector_mode: str, terminal_on_life_loss: bool = False,
                       render_mode: str | None = None, env_kwargs: dict | None = None) -> gym.vector.VectorEnv:
    """`num_envs` preprocessed sub-envs in a Sync or Async vector env (NEXT_STEP autoreset).

    ale-py's C++ vector env (vector_entry_point) is refused: its frame stack pads the start of an
    episode with black frames where FrameStackObservation repeats the reset frame, so the same
    policy would see other observations at every episode start (benchmarks/atari_vector_modes.py).
    """
    if vector_mode == "vector_entry_point":
        raise ConfigError(VECTOR_ENTRY_POINT_REFUSED.format(env_id=env_id))
    make = functools.partial(make_atari_env, env_id, terminal_on_life_loss, render_mode=render_mode,
                             env_kwargs=env_kwargs)
    mode = gym.vector.AutoresetMode.NEXT_STEP
    if vector_mode == "async":
        return gym.vector.AsyncVectorEnv([make] * num_envs, autoreset_mode=mode)
    return gym.vector.SyncVectorEnv([make] * num_envs, autoreset_mode=mode)


def record_then_clip(envs: gym.vector.VectorEnv, clip: bool) -> gym.vector.VectorEnv:
    """Episode statistics on the real score, then (training only) rewards r -> sign(r) in {-1, 0, 1}.

    The order matters: RecordEpisodeStatistics inside sees the game's rewards, so `reward` and
    `reward_100` are game scores; the learner, outside, sees the clipped ones (DQN paper).
    """
    from gymnasium.wrappers.vector import RecordEpisodeStatistics, TransformReward

    envs = RecordEpisodeStatistics(envs, buffer_length=100)
    return TransformReward(envs, np.sign) if clip else envs
