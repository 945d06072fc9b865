"""Environment construction: gymnasium vector envs with episode statistics.

All vector envs here use gymnasium's default NEXT_STEP autoreset: the step that ends an episode
returns its last observation with terminated/truncated set, and the *following* step of that
sub-env is a reset (its action is ignored, reward 0). Collectors must drop that step; see
`tfpg.experience.collectors`.
"""
from __future__ import annotations

import difflib
import functools
import importlib
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FrameStackObservation, GrayscaleObservation, ResizeObservation
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from tfpg.core.errors import ConfigError
from tfpg.envs import atari, python_envs

_ale_registered = False


def _register_ale() -> None:
    global _ale_registered
    if not _ale_registered:
        import ale_py

        gym.register_envs(ale_py)
        _ale_registered = True


def import_env_module(env_id: str) -> str:
    """Import the module of a "module:EnvId" id (gymnasium's form: importing it registers the env); the EnvId."""
    module, sep, name = env_id.partition(":")
    if not sep:
        return env_id
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"--env {env_id}: cannot import {module} ({e}); install it or put its folder on "
                          "PYTHONPATH") from None
    return name


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """Return the registered spec of `env_id` (a "module:EnvId" id imports its module first), or raise
    ConfigError suggesting close ids."""
    env_id = import_env_module(env_id)
    if env_id.startswith("ALE/") or "NoFrameskip" in env_id:
        _register_ale()
    if env_id not in gym.registry:
        _register_ale()
    if env_id not in gym.registry:
        if python_envs.is_python_env_id(env_id):
            raise ConfigError(python_envs.python_env_message(env_id))
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "see gymnasium's registry (gymnasium.pprint_registry())"
        raise ConfigError(f"unknown environment id {env_id!r}; {hint}")
    return gym.spec(env_id)


@dataclass(frozen=True)
class EnvSpaces:
    observation_space: gym.Space
    action_space: gym.Space


def is_rgb_frames(space: gym.Space) -> bool:
    """Whether observations are single RGB frames (H, W, 3) uint8, as Box2D's CarRacing returns."""
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3 \
        and space.shape[-1] == 3


def preprocess_frames(env: gym.Env) -> gym.Env:
    """RGB frames -> the layout the Nature CNN reads, the Atari one (`tfpg.envs.atari`): grayscale, 84x84, the
    last 4 stacked, (4, 84, 84) uint8. Why stacked: one frame shows where things are, not how they move."""
    env = ResizeObservation(GrayscaleObservation(env), (atari.SCREEN_SIZE, atari.SCREEN_SIZE))
    return FrameStackObservation(env, atari.FRAME_STACK)


@functools.lru_cache(maxsize=None)
def _has_rgb_frames(env_id: str) -> bool:
    env = gym.make(env_id)
    try:
        return is_rgb_frames(env.observation_space)
    finally:
        env.close()


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """One env as the agent sees it, with real (unclipped) rewards: Atari games get tfpg's
    preprocessing (`tfpg.envs.atari`), other RGB-frame envs `preprocess_frames`, anything else is
    `gym.make(env_id)`."""
    spec = check_env_id(env_id)
    if atari.is_atari(spec):
        return atari.make_atari_env(env_id, render_mode=render_mode)
    # render_mode only when asked: gymnasium passes render_mode=None on, which an env's own __init__ may not take
    env = gym.make(env_id, **({} if render_mode is None else {"render_mode": render_mode}))
    return preprocess_frames(env) if is_rgb_frames(env.observation_space) else env


def env_spaces(env_id: str) -> EnvSpaces:
    """The single-env observation and action spaces of `env_id` (builds and closes one env)."""
    env = make_env(env_id)
    try:
        return EnvSpaces(env.observation_space, env.action_space)
    finally:
        env.close()


def make_vec_env(env_id: str, num_envs: int, seed: int, vector_mode: str = "auto", training: bool = False,
                 terminal_on_life_loss: bool = False, render_mode: str | None = None) -> gym.vector.VectorEnv:
    """A seeded vector env of `num_envs` copies of `env_id` that records episode statistics.

    vector_mode "auto" uses the env's own batched implementation where gymnasium has one
    (CartPole: numpy-vectorised physics, no per-env Python loop), else SyncVectorEnv: on two
    cores, subprocess vector envs are slower than in-process stepping for cheap envs (Atari
    included: benchmarks/atari_vector_modes.py).

    Atari games are built by `tfpg.envs.atari`; with `training` their rewards are clipped to sign(r)
    *outside* the episode statistics, which keep the real score. Evaluation envs are unclipped.
    Other envs with RGB frames get `preprocess_frames` in each sub-env.
    Autoreset is NEXT_STEP; `tfpg.envs.stepping.VecStepper` checks that the env declares it.
    """
    spec = check_env_id(env_id)
    if atari.is_atari(spec):
        envs = atari.make_atari_vec_env(env_id, num_envs, "sync" if vector_mode == "auto" else vector_mode,
                                        terminal_on_life_loss, render_mode=render_mode)
        envs = atari.record_then_clip(envs, clip=training)
    else:
        if vector_mode == "auto":
            vector_mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
        if vector_mode == "vector_entry_point" and spec.vector_entry_point is None:
            raise ConfigError(f"{env_id} has no batched implementation; use --vector-mode sync or async")
        kwargs = {} if render_mode is None else {"render_mode": render_mode}
        if vector_mode != "vector_entry_point":
            kwargs["vector_kwargs"] = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
            if _has_rgb_frames(env_id):
                kwargs["wrappers"] = [preprocess_frames]
        envs = RecordEpisodeStatistics(gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vector_mode,
                                                    **kwargs), buffer_length=100)
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    return envs


def make_train_envs(config) -> gym.vector.VectorEnv:
    """The training vector env of a RunConfig (Atari rewards clipped, episode statistics real)."""
    return make_vec_env(config.env_id, config.num_envs, config.seed, config.vector_mode, training=True,
                        terminal_on_life_loss=config.terminal_on_life_loss)


def space_to_dict(space: gym.Space) -> dict:
    """A JSON-able description of a Box or Discrete space (for export metadata)."""
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _bounds(space.low), "high": _bounds(space.high)}
    raise ConfigError(f"unsupported space {space}; tfpg handles Box and Discrete spaces")


def _bounds(a: np.ndarray):
    # Image spaces have 28k identical bounds: store the scalar when all are equal.
    flat = np.asarray(a, dtype=np.float64).ravel()
    values = [v if np.isfinite(v) else (1e308 if v > 0 else -1e308) for v in flat.tolist()]
    return values[0] if len(set(values)) == 1 else values


def describe_space(described: dict) -> str:
    """Short text for a space dict: Discrete(2), Box(4,) float32."""
    if described.get("type") == "Discrete":
        return f"Discrete({described['n']})"
    return f"Box({','.join(map(str, described.get('shape', [])))},) {described.get('dtype')}"


def spaces_match(described: dict, space: gym.Space) -> bool:
    try:
        return described == space_to_dict(space)
    except ConfigError:
        return False
