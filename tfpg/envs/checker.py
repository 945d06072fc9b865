"""Checking a user's own env before a run writes anything.

Which envs: every env not shipped with gymnasium or ale_py (`is_users_env`), the `python/...` ids of env objects
given from Python included. gymnasium's and ale_py's own are trusted: their tests cover them, and a run on them does
not pay for the check.

Fatal (a ConfigError of one line naming the env id and the problem), because training would break on it, often deep
inside gymnasium's vector env, or go on with observations other than the declared ones:
- `reset()` returns `(observation, info)` with `info` a dict;
- `step()` returns five values `(observation, reward, terminated, truncated, info)`, a finite number as the reward
  and a dict as `info`;
- each observation (from `reset()` and `step()`) has the shape of its Box observation_space and a dtype that casts
  safely to the space's: the vector env stores observations in arrays of the space's shape and dtype, and tfpg
  builds the network, its pixel scaling and the export's signature from the space;
- observations are finite; so is the reward;
- `reset()` and `step()` do not raise.

Everything else gymnasium's `check_env` finds (seeding determinism, values outside the space's bounds, data reused
between steps, non-bool `terminated`, ...) is returned as warnings: training works without it.
"""
from __future__ import annotations

import numbers
import re
import warnings
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

from tfpg.core.errors import ConfigError, one_line
from tfpg.envs import make as envs_lib

TRUSTED_PACKAGES = ("gymnasium.", "ale_py")


def is_users_env(spec: gym.envs.registration.EnvSpec) -> bool:
    """Whether a registered env comes from outside gymnasium and ale_py (its entry point's module)."""
    entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
    return not str(entry or "").startswith(TRUSTED_PACKAGES)


def check_users_env(env_id: str, env_kwargs: dict | None = None) -> list[str]:
    """ConfigError on a fatal finding (see the module docstring) in one env built from `env_id` with `env_kwargs`;
    else gymnasium's other findings as one-line warnings, each once. Nothing for gymnasium's and ale_py's envs."""
    if not is_users_env(envs_lib.check_env_id(env_id)):
        return []
    built = gym.make(env_id, disable_env_checker=True, **(env_kwargs or {}))
    env = built.unwrapped   # the user's code, without gymnasium's wrappers
    try:
        check_api(env_id, env)
        return _gymnasium_findings(env_id, env)
    finally:
        built.close()   # through the wrappers: an env instance given from Python is the user's, and stays open


def check_api(env_id: str, env: gym.Env) -> None:
    """One reset and one step of `env`, checked for what training needs; ConfigError naming the first problem."""
    result = _call(env_id, "reset()", lambda: env.reset(seed=0))
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise ConfigError(f"{env_id}: reset() returned {_describe(result)}, not (observation, info) with info a "
                          "dict: return both, as gymnasium's API has since 0.26")
    check_observation(env_id, "reset()", result[0], env.observation_space)
    result = _call(env_id, "step()", lambda: env.step(env.action_space.sample()))
    if not (isinstance(result, tuple) and len(result) == 5):
        raise ConfigError(f"{env_id}: step() returned {_describe(result)}, not the five values (observation, "
                          "reward, terminated, truncated, info) of gymnasium's API: split done into terminated and "
                          "truncated")
    observation, reward, _, _, info = result
    check_observation(env_id, "step()", observation, env.observation_space)
    if not isinstance(reward, numbers.Real) or isinstance(reward, (bool, np.bool_)):
        raise ConfigError(f"{env_id}: step() returned a reward of type {type(reward).__name__}; return a number")
    if not np.isfinite(reward):
        raise ConfigError(f"{env_id}: step() returned a non-finite reward ({reward})")
    if not isinstance(info, dict):
        raise ConfigError(f"{env_id}: step() returned info of type {type(info).__name__}; return a dict")


def check_observation(env_id: str, where: str, observation, space: gym.Space) -> None:
    """ConfigError unless `observation` has the shape of a Box `space`, a dtype that casts safely to its, and
    finite values (other spaces: tfpg's own checks refuse them with their own message)."""
    if not isinstance(space, gym.spaces.Box):
        return
    array = np.asarray(observation)
    problem = None
    if array.shape != space.shape:
        problem = f"an observation of shape {array.shape}"
    elif isinstance(observation, np.ndarray) and not np.can_cast(array.dtype, space.dtype):
        problem = f"an observation of dtype {array.dtype}"
    elif array.dtype.kind == "f" and not np.isfinite(array).all():
        problem = "a non-finite observation"
    if problem:
        raise ConfigError(f"{env_id}: {where} returned {problem}, but its observation_space is {space}")


def _call(env_id: str, what: str, call: Callable):
    try:
        return call()
    except Exception as e:   # the user's code: one line naming it, not a traceback from inside gymnasium
        raise ConfigError(f"{env_id}: {what} raised {type(e).__name__}: {one_line(e)}") from None


def _describe(result) -> str:
    """'a tuple of 4 values', 'a ndarray', '(observation, list)'."""
    if not isinstance(result, tuple):
        return f"a {type(result).__name__}"
    if len(result) == 2:
        return f"(observation, {type(result[1]).__name__})"
    return f"a tuple of {len(result)} values"


_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


def _gymnasium_findings(env_id: str, env: gym.Env) -> list[str]:
    """What gymnasium's check_env warns or asserts about `env` (render modes not checked: training does not render)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            check_env(env, skip_render_check=True)
            failed = []
        except Exception as e:   # its assertions on what training does not need (seeding determinism, ...)
            failed = [f"{type(e).__name__}: {one_line(e, limit=300)}"]
    found = [_COLOURS.sub("", str(w.message)).removeprefix("WARN: ").removeprefix("ERROR: ").strip() for w in caught]
    return [f"{env_id}: {text}" for text in dict.fromkeys(found + failed)]
