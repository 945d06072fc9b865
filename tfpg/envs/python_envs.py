"""Envs given as Python objects -- a zero-argument factory, or one env instance -- instead of an id.

Each is registered with gymnasium under an id `python/<module>.<name>` (`register_python_env`), so every
part of tfpg that builds envs by id (the trainer, the evaluator, the checks, Ray workers, which register
the same factory in their own process) builds them one way. The id is what the run's config.json records:
a fresh process cannot rebuild a Python object from it, so resuming such a run takes the object again
(`tfpg.load(run_dir, env=...)`), and `python_env_message` says so in one line.
"""
from __future__ import annotations

import re
from collections.abc import Callable

import gymnasium as gym

PREFIX = "python/"


class _Borrowed(gym.Wrapper):
    """The user's env instance as tfpg's one training env: tfpg closes what it builds, but this env is the
    user's, who may keep using it after training, so `close` leaves it open."""

    def close(self) -> None:
        pass


def is_python_env_id(env_id: str) -> bool:
    return env_id.startswith(PREFIX)


def describe(env: object) -> str:
    """'module.QualName' of a factory (a function or a class) or of an instance's class."""
    target = env if callable(env) and not isinstance(env, gym.Env) else type(env)
    module = getattr(target, "__module__", None) or "python"
    name = getattr(target, "__qualname__", None) or type(target).__name__
    return f"{module}.{name}"


def python_env_id(env: object) -> str:
    """The gymnasium id an env object is registered under: python/<module>.<name>, in id-safe characters."""
    return PREFIX + re.sub(r"[^\w.-]", "_", describe(env))


def register_python_env(env: gym.Env | Callable[[], gym.Env], env_id: str | None = None) -> str:
    """Register a factory or an instance under `env_id` (default `python_env_id(env)`), replacing an earlier
    registration of that id; returns the id. An instance is one env: every make of the id returns it."""
    env_id = env_id or python_env_id(env)
    if isinstance(env, gym.Env):
        def entry_point(**kwargs):
            return _Borrowed(env)
    else:
        def entry_point(**kwargs):
            # gymnasium passes render_mode=None to a creator that takes **kwargs; a plain factory takes nothing
            if kwargs.get("render_mode", 0) is None:
                del kwargs["render_mode"]
            return env(**kwargs)
    if env_id in gym.registry:
        del gym.registry[env_id]
    gym.register(env_id, entry_point=entry_point, disable_env_checker=True)
    gym.registry[env_id].kwargs = {}
    _OBJECTS[env_id] = env
    return env_id


_OBJECTS: dict[str, object] = {}


def registered_object(env_id: str) -> object | None:
    """The factory or instance registered under `env_id` in this process, if any."""
    return _OBJECTS.get(env_id)


def python_env_message(env_id: str, run_dir: str | None = None) -> str:
    """Why `env_id` cannot be built here, and what to do: pass the object again from Python."""
    where = f"tfpg.load({run_dir!r}, env=...)" if run_dir else "tfpg.load(RUN_DIR, env=...)"
    return (f"{env_id} is an env that was given from Python ({env_id[len(PREFIX):]}), which a new process cannot "
            f"rebuild from its name: continue from Python with {where} and the same factory or instance")
