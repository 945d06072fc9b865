"""Environment construction: gymnasium vector envs with episode statistics.

All vector envs here use gymnasium's default NEXT_STEP autoreset: the step that ends an episode
returns its last observation with terminated/truncated set, and the *following* step of that
sub-env is a reset (its action is ignored, reward 0). Collectors must drop that step; see
`tfpg.experience.collectors`.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FrameStackObservation, GrayscaleObservation, ResizeObservation
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from tfpg.core.errors import ConfigError, one_line
from tfpg.envs import atari, python_envs

_ale_registered = False


def _register_ale() -> None:
    global _ale_registered
    if not _ale_registered:
        import ale_py

        gym.register_envs(ale_py)
        _ale_registered = True


def split_env_id(env_id: str) -> tuple[str | None, str]:
    """(module, registered id) of `module:EnvId` (as gymnasium.make reads it); (None, env_id) without a module."""
    module, sep, name = env_id.rpartition(":")
    return (module, name) if sep else (None, env_id)


def import_env_module(env_id: str, module: str) -> None:
    """Import `module` (which registers envs on import), or raise ConfigError naming it and its import error."""
    try:
        importlib.import_module(module)
    except Exception as e:   # not only ImportError: the module's own code may fail while it runs
        raise ConfigError(f"{env_id}: cannot import module {module!r} ({type(e).__name__}: {one_line(e)}): install "
                          "it or put it on PYTHONPATH") from None


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of `env_id` (`module:EnvId` imports the module first), or ConfigError suggesting close
    ids."""
    module, name = split_env_id(env_id)
    if module is not None:
        import_env_module(env_id, module)
    if name.startswith("ALE/") or "NoFrameskip" in name or name not in gym.registry:
        _register_ale()
    if name not in gym.registry:
        if python_envs.is_python_env_id(name):
            raise ConfigError(python_envs.python_env_message(name))
        prefix = "" if module is None else f"{module}:"
        close = [prefix + c for c in difflib.get_close_matches(name, list(gym.registry), n=3, cutoff=0.6)]
        hint = f"did you mean {', '.join(close)}?" if close else "see gymnasium's registry (gymnasium.pprint_registry())"
        imported = "" if module is None else f" (module {module!r} registers no such id)"
        raise ConfigError(f"unknown environment id {env_id!r}{imported}; {hint}")
    return gym.spec(name)


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


_RGB_FRAMES: dict[tuple[str, str], bool] = {}


def _has_rgb_frames(env_id: str, env_kwargs: dict) -> bool:
    """Whether `env_id` built with `env_kwargs` returns RGB frames (builds one env per id and kwargs)."""
    key = (env_id, repr(sorted(env_kwargs.items())))
    if key not in _RGB_FRAMES:
        env = gym.make(env_id, **env_kwargs)
        try:
            _RGB_FRAMES[key] = is_rgb_frames(env.observation_space)
        finally:
            env.close()
    return _RGB_FRAMES[key]


def describe_kwargs(env_kwargs: dict | None) -> str:
    """' with --env-kwargs a=1 b='x'', or '' without kwargs."""
    if not env_kwargs:
        return ""
    return " with --env-kwargs " + " ".join(f"{k}={v!r}" for k, v in env_kwargs.items())


def make_env(env_id: str, render_mode: str | None = None, env_kwargs: dict | None = None) -> gym.Env:
    """One env as the agent sees it, with real (unclipped) rewards: Atari games get tfpg's
    preprocessing (`tfpg.envs.atari`), other RGB-frame envs `preprocess_frames`, anything else is
    `gym.make(env_id, **env_kwargs)`."""
    spec = check_env_id(env_id)
    env_kwargs = env_kwargs or {}
    try:
        if atari.is_atari(spec):
            return atari.make_atari_env(env_id, render_mode=render_mode, env_kwargs=env_kwargs)
        # render_mode only when one is asked for: a user's env need not take the argument
        env = gym.make(env_id, **env_kwargs, **({} if render_mode is None else {"render_mode": render_mode}))
    except TypeError as e:
        if not env_kwargs:
            raise
        # the usual cause: a keyword the constructor does not take, or a value of a type it cannot use
        raise ConfigError(f"cannot build {env_id}{describe_kwargs(env_kwargs)} ({type(e).__name__}: "
                          f"{one_line(e)}): check the names and values against its constructor") from None
    return preprocess_frames(env) if is_rgb_frames(env.observation_space) else env


def env_spaces(env_id: str, env_kwargs: dict | None = None) -> EnvSpaces:
    """The single-env observation and action spaces of `env_id` (builds and closes one env)."""
    env = make_env(env_id, env_kwargs=env_kwargs)
    try:
        return EnvSpaces(env.observation_space, env.action_space)
    finally:
        env.close()


def make_vec_env(env_id: str, num_envs: int, seed: int, vector_mode: str = "auto", training: bool = False,
                 terminal_on_life_loss: bool = False, render_mode: str | None = None,
                 env_kwargs: dict | None = None) -> gym.vector.VectorEnv:
    """A seeded vector env of `num_envs` copies of `env_id` that records episode statistics.

    vector_mode "auto" uses the env's own batched implementation where gymnasium has one
    (CartPole: numpy-vectorised physics, no per-env Python loop), else SyncVectorEnv: on two
    cores, subprocess vector envs are slower than in-process stepping for cheap envs (Atari
    included: benchmarks/atari_vector_modes.py).

    Atari games are built by `tfpg.envs.atari`; with `training` their rewards are clipped to sign(r)
    *outside* the episode statistics, which keep the real score. Evaluation envs are unclipped.
    Other envs with RGB frames get `preprocess_frames` in each sub-env.
    Autoreset is NEXT_STEP; `tfpg.envs.stepping.VecStepper` checks that the env declares it.
    `env_kwargs` go to each sub-env's constructor (or the batched env's).
    """
    spec = check_env_id(env_id)
    env_kwargs = env_kwargs or {}
    if atari.is_atari(spec):
        envs = atari.make_atari_vec_env(env_id, num_envs, "sync" if vector_mode == "auto" else vector_mode,
                                        terminal_on_life_loss, render_mode=render_mode, env_kwargs=env_kwargs)
        envs = atari.record_then_clip(envs, clip=training)
    else:
        if vector_mode == "auto":
            vector_mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
        if vector_mode == "vector_entry_point" and spec.vector_entry_point is None:
            raise ConfigError(f"{env_id} has no batched implementation; use --vector-mode sync or async")
        kwargs = dict(env_kwargs) if render_mode is None else {**env_kwargs, "render_mode": render_mode}
        if vector_mode != "vector_entry_point":
            kwargs["vector_kwargs"] = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
            if _has_rgb_frames(env_id, env_kwargs):
                kwargs["wrappers"] = [preprocess_frames]
        envs = RecordEpisodeStatistics(gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vector_mode,
                                                    **kwargs), buffer_length=100)
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    return envs


def make_train_envs(config) -> gym.vector.VectorEnv:
    """The training vector env of a RunConfig (Atari rewards clipped, episode statistics real)."""
    return make_vec_env(config.env_id, config.num_envs, config.seed, config.vector_mode, training=True,
                        terminal_on_life_loss=config.terminal_on_life_loss, env_kwargs=config.env_kwargs)


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
