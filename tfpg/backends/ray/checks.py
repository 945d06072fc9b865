"""What --workers needs before a run creates anything: CPUs for the workers, an env the workers can build.

CPUs: each worker is a Ray actor that asks for one CPU (`tfpg.backends.ray.workers`). Ray places an actor only
when a CPU is free, so more workers than CPUs would wait for ever; this is checked here for a Ray instance on this
machine, whose CPUs are known before it starts. The learner (this process, Ray's driver) is not a Ray task and
asks for none: on-policy collection is synchronous (the workers step while the learner waits, the learner learns
while they wait), so N workers on N CPUs plus the learner do not compete; a cluster's CPUs are known only once
joined, where `WorkerPool` waits a bounded time for the workers to be placed instead.

Env objects: an env given from Python (`tfpg.envs.python_envs`, ids python/...) reaches the workers as its
factory pickled by Ray's cloudpickle, which each worker registers under the same id.
"""
from __future__ import annotations

import os
import sys

from tfpg.core.errors import ConfigError, one_line
from tfpg.envs import python_envs


def held_ray():
    """The `ray` module when this process is connected to a Ray instance, else None (Ray not even imported)."""
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


def detected_cpus() -> int:
    """The CPUs a local Ray instance started without num_cpus gets: Ray's own count (cgroup limits included)."""
    try:
        from ray._private.utils import get_num_cpus   # what ray.init uses; private, so not relied on
    except ImportError:
        return os.cpu_count() or 1
    return int(get_num_cpus())


def ray_cpus(config) -> tuple[float, str, str] | None:
    """(CPUs the workers can be placed on, what has them with "{cpus}" for the number, a fix besides fewer
    workers), or None for a cluster still to join."""
    ray = held_ray()
    if ray is not None:   # used as it is (`start_ray`): its resources, not the flags
        return ray.cluster_resources().get("CPU", 0.0), "the Ray instance this process is connected to has {cpus}", ""
    if config.ray_address is not None:
        return None
    if config.ray_num_cpus:
        return config.ray_num_cpus, "--ray-num-cpus gives the local Ray instance {cpus}", ", or raise --ray-num-cpus"
    return (detected_cpus(), "the local Ray instance will have {cpus} (this machine's CPUs)",
            ", or set --ray-num-cpus if this machine has more CPUs than Ray counts")


def check_cpus(config) -> None:
    """ConfigError when the workers ask a Ray instance on this machine for more CPUs than it has."""
    found = ray_cpus(config)
    if found is None or config.workers <= found[0]:
        return
    cpus, has, other_fix = found
    fewer = f"use --workers {int(cpus)} or fewer" if cpus >= 1 else "drop --workers"
    raise ConfigError(f"--workers {config.workers} asks Ray for {config.workers} CPUs (one per worker) but "
                      f"{has.format(cpus=f'{cpus:g}')}: {fewer}{other_fix}")


def pickled_env_factory(env_id: str) -> bytes | None:
    """The factory registered under a python/... id, pickled for the workers; None for an id gymnasium builds.
    ConfigError for an env instance (one env) or a factory that cannot be pickled."""
    if not python_envs.is_python_env_id(env_id):
        return None
    obj = python_envs.registered_object(env_id)
    if obj is None:
        raise ConfigError(python_envs.python_env_message(env_id))
    import gymnasium as gym

    if isinstance(obj, gym.Env):
        raise ConfigError(f"an env instance is one env; workers need a zero-argument factory that builds one each "
                          f"(the env's class, or a function): pass that instead of {python_envs.describe(obj)}(), "
                          "or use workers=0")
    from ray import cloudpickle

    try:
        return cloudpickle.dumps(obj)
    except Exception as e:   # what cannot be pickled raises TypeError, PicklingError, AttributeError, ...
        raise ConfigError(f"the env factory {python_envs.describe(obj)} cannot be sent to Ray workers "
                          f"({one_line(e)}): define it at module level without locks or open files, or use "
                          "workers=0") from None


def check_workers(config) -> None:
    """Everything --workers needs that can be known before Ray starts (`check_cpus`, `pickled_env_factory`)."""
    if config.workers:
        pickled_env_factory(config.env_id)
        check_cpus(config)
