"""Everything checked before a run creates anything: env id, spaces, options against the env, what
--workers needs (`tfpg.backends.ray.checks`), output folders, and what --resume continues. Each problem
is a ConfigError with one line."""
from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from typing import TYPE_CHECKING

import gymnasium as gym

from tfpg.algos.capabilities import Distributable, GraphTrainable
from tfpg.backends.ray.checks import check_workers
from tfpg.config.run import RunConfig, validate, with_env_module, with_fields_added_later
from tfpg.core.errors import ConfigError
from tfpg.core.files import CONFIG_FILE, RESTORE_CONFIG, read_run_config
from tfpg.envs import checker
from tfpg.envs import make as envs_lib

if TYPE_CHECKING:
    from tfpg.core.checkpoint import RestoreResult


def check_run(config: RunConfig, given: frozenset[str] = frozenset()) -> tuple[str, str | None]:
    """Env id, spaces, a user's own env (`tfpg.envs.checker`: its non-fatal findings go to stderr), the
    algorithm's own space rules, Atari options, output folders; `given`: the field names of the options given as
    flags (`tfpg.algos.registry.given_options`).

    Returns (run_dir, export_path). Creates nothing."""
    from tfpg.algos.registry import REGISTRY

    spaces = envs_lib.env_spaces(config.env_id, config.env_kwargs)
    for finding in checker.check_users_env(config.env_id, config.env_kwargs):
        print(f"train.py: warning: {finding}", file=sys.stderr)
    REGISTRY[config.algo].check_spaces(config, spaces)
    check_backend(config)
    if config.workers and not issubclass(REGISTRY[config.algo], Distributable):
        raise ConfigError(f"--algo {config.algo} does not collect through a collector that rollout workers can run; "
                          "drop --workers")
    if config.workers and config.backend == "graph":
        raise ConfigError("--backend graph steps its envs inside one compiled program, not on Ray workers: drop "
                          "--workers or --backend graph")
    check_workers(config)
    check_observations(config, spaces.observation_space, given)
    return prepare_paths(config)


def check_backend(config: RunConfig) -> None:
    """--backend graph: an env written as TensorFlow ops, and an algorithm (and options) that path implements."""
    from tfpg.algos.registry import REGISTRY

    if config.backend == "graph":
        from tfpg.envs.graph import GRAPH_ENVS

        if config.env_id not in GRAPH_ENVS:
            raise ConfigError(f"--backend graph needs an env written as TensorFlow ops ({', '.join(GRAPH_ENVS)}); "
                              f"{config.env_id} is not one: use --backend gym")
        if config.env_kwargs:
            raise ConfigError("--backend graph runs its envs as TensorFlow ops, which take no constructor arguments: "
                              "drop --env-kwargs or use --backend gym")
        algorithm = REGISTRY[config.algo]
        if not issubclass(algorithm, GraphTrainable):
            raise ConfigError(f"--backend graph is not implemented for --algo {config.algo}; use --backend gym")
        algorithm.check_graph_backend(config)


def check_observations(config: RunConfig, observation_space: gym.Space, given: frozenset[str]) -> None:
    """Atari-only options on an Atari env only; observations a network can take; --normalize-obs, when given,
    on flat observations only (on frames the fallback's and the presets' value is inert, not an error)."""
    from tfpg.envs.atari import VECTOR_ENTRY_POINT_REFUSED, is_atari
    from tfpg.models.networks import is_image_space

    atari = is_atari(envs_lib.check_env_id(config.env_id))
    if config.terminal_on_life_loss and not atari:
        raise ConfigError(f"--terminal-on-life-loss applies to Atari games only, not {config.env_id}")
    if atari and config.vector_mode == "vector_entry_point":
        raise ConfigError(VECTOR_ENTRY_POINT_REFUSED.format(env_id=config.env_id))
    image = is_image_space(observation_space)
    if not image and not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
        raise ConfigError(f"{config.env_id} has observations {observation_space}; tfpg's networks take flat Box "
                          "observations (MLP) or stacked uint8 frames (CNN)")
    # "given" first: only then is normalize_obs a field of this algorithm's config (DQN has none)
    if image and "normalize_obs" in given and config.normalize_obs:
        raise ConfigError(f"--normalize-obs keeps running statistics of flat observations; the CNN on "
                          f"{config.env_id}'s frames scales its pixels itself: drop --normalize-obs")


def default_run_name(config: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    _, env_name = envs_lib.split_env_id(config.env_id)   # the module is in config.json; a colon is no folder name
    return f"{config.algo}-{env_name.replace('/', '_')}-s{config.seed}-{stamp}"


def _can_create_in(folder: str) -> bool:
    """Whether a folder can be made in `folder` (os.access alone is fooled by e.g. /proc, or by root)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".tfpg-probe-", dir=folder))
        return True
    except OSError:
        return False


def prepare_paths(config: RunConfig) -> tuple[str, str | None]:
    """(run_dir, export_path), checked for collisions and writability before anything is built."""
    name = config.run_name or default_run_name(config)
    run_dir = os.path.abspath(os.path.join(config.logdir, name))
    export_path = os.path.abspath(os.path.join(config.export_dir, name)) if config.export else None
    if os.path.exists(run_dir):
        raise ConfigError(f"run directory {run_dir} already exists; choose another --run-name")
    if export_path and os.path.exists(export_path) and not config.overwrite:
        raise ConfigError(f"export directory {export_path} already exists; pass --overwrite or choose another "
                          "--run-name")
    for d in filter(None, [config.logdir, config.export_dir if config.export else None]):
        probe = os.path.abspath(d)
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if not os.path.isdir(probe) or not _can_create_in(probe):
            raise ConfigError(f"cannot write under {os.path.abspath(d)} ({probe} is not a writable folder); "
                              "choose another --logdir/--export-dir")
    return run_dir, export_path


# Flags that may be given with --resume: they change how the run continues, not what it is.
RESUMABLE = ("total_steps", "progress", "ray_address", "ray_num_cpus")


def check_resume(run_dir: str, algo: str | None, env_id: str | None, preset: str | None,
                 overrides: dict) -> tuple[RunConfig, str, str | None, RestoreResult]:
    """The saved configuration of `run_dir`, checked against the flags given with --resume, and the
    newest intact checkpoint (every tensor read with TensorFlow's checksums; damaged newer ones are
    listed in the result). Reads only: a damaged config.json or no intact checkpoint is a ConfigError
    before anything in the run folder is written."""
    from tfpg.algos.registry import REGISTRY
    from tfpg.core.checkpoint import CHECKPOINT_DIR, find_intact_checkpoint

    run_dir = os.path.abspath(run_dir)
    config_file = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(config_file):
        raise ConfigError(f"--resume {run_dir}: no config.json there; pass a run folder written by train.py "
                          "(runs/<run-name>)")
    saved = read_run_config(run_dir, {name: [f.name for f in dataclasses.fields(algorithm.config_class)]
                                      for name, algorithm in REGISTRY.items()})
    if algo is not None and algo != saved["algo"]:
        raise ConfigError(f"--resume {run_dir} holds a checkpoint of --algo {saved['algo']}, not {algo}")
    if env_id is not None and env_id != saved.get("env_id"):
        raise ConfigError(f"--resume {run_dir} holds a checkpoint for {saved.get('env_id')}, not {env_id}")
    extra = sorted(k for k, v in overrides.items() if v is not None and k not in RESUMABLE)
    if preset is not None or extra:
        flag = "--preset" if preset is not None else "--" + extra[0].replace("_", "-")
        raise ConfigError(f"{flag} cannot be changed when resuming: --resume continues with the run's saved "
                          "configuration")
    config_class = REGISTRY[saved["algo"]].config_class
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in with_fields_added_later(saved, config_class).items()}
    try:
        saved_config = config_class(**values)
        validate(saved_config)
    except (TypeError, ConfigError) as e:   # a value of the wrong type or out of bounds: edited or damaged
        raise ConfigError(f"{config_file} is damaged ({e}); {RESTORE_CONFIG}") from None
    config = dataclasses.replace(with_env_module(saved_config),
                                 **{k: overrides[k] for k in RESUMABLE if overrides.get(k) is not None})
    validate(config)   # the flags given with --resume
    check_workers(config)   # --ray-address and --ray-num-cpus may be new
    try:
        validated = find_intact_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR))
    except ConfigError as e:
        raise ConfigError(f"--resume {run_dir}: {e}") from None
    name = os.path.basename(run_dir)
    export_path = os.path.abspath(os.path.join(config.export_dir, name)) if config.export else None
    return config, run_dir, export_path, validated
