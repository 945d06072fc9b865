"""The algorithms, and the checks a config must pass before one of them starts."""
from __future__ import annotations

import os
import time

import gymnasium as gym

from tfpg import envs as envs_lib
from tfpg.config import RunConfig
from tfpg.errors import ConfigError

# Which action spaces each algorithm's policies can drive, and which policy fits which space.
ACTION_SPACES = {"reinforce": (gym.spaces.Discrete, gym.spaces.Box), "dqn": (gym.spaces.Discrete,)}
POLICY_SPACES = {"categorical": gym.spaces.Discrete, "gaussian": gym.spaces.Box}


def policy_kind(requested: str, action_space: gym.Space) -> str:
    """Resolve --policy: auto picks categorical for Discrete and gaussian for Box actions;
    an explicit kind must fit the space (ConfigError otherwise)."""
    if requested == "auto":
        for kind, space in POLICY_SPACES.items():
            if isinstance(action_space, space):
                return kind
        raise ConfigError(f"no policy for the action space {action_space}; tfpg handles Discrete and Box")
    needed = POLICY_SPACES[requested]
    if not isinstance(action_space, needed):
        raise ConfigError(f"--policy {requested} needs a {needed.__name__} action space, but the env has "
                          f"{action_space}; use --policy auto")
    return requested


def check_run(config: RunConfig) -> tuple[str, str | None]:
    """Everything that can be checked before training: env id, spaces, policy, output folders.

    Returns (run_dir, export_path). Creates nothing.
    """
    spaces = envs_lib.env_spaces(config.env_id)
    allowed = ACTION_SPACES[config.algo]
    if not isinstance(spaces.action_space, allowed):
        raise ConfigError(f"--algo {config.algo} needs a {' or '.join(a.__name__ for a in allowed)} action space, "
                          f"but {config.env_id} has {spaces.action_space}; pick another env")
    if hasattr(config, "policy"):
        kind = policy_kind(config.policy, spaces.action_space)
        if kind != "gaussian" and (config.std_ceiling or config.log_std_lr):
            flag = "--std-ceiling" if config.std_ceiling else "--log-std-lr"
            raise ConfigError(f"{flag} applies to the gaussian policy (Box actions), but {config.env_id} gets the "
                              f"{kind} policy; drop {flag}")
    check_atari(config, spaces.observation_space)
    return prepare_paths(config)


def check_atari(config: RunConfig, observation_space: gym.Space) -> None:
    """Atari-only options on an Atari env only; image observations only where a CNN can take them."""
    from tfpg.atari import is_atari
    from tfpg.networks import is_image_space

    atari = is_atari(gym.spec(config.env_id))
    if config.terminal_on_life_loss and not atari:
        raise ConfigError(f"--terminal-on-life-loss applies to Atari games only, not {config.env_id}")
    if atari and config.vector_mode == "vector_entry_point":
        raise ConfigError(f"{config.env_id}: tfpg builds Atari envs from gymnasium's wrappers (ale-py's C++ vector env "
                          "pads episode starts with black frames); use --vector-mode auto, sync or async")
    image = is_image_space(observation_space)
    if not image and not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
        raise ConfigError(f"{config.env_id} has observations {observation_space}; tfpg's networks take flat Box "
                          "observations (MLP) or stacked uint8 frames (CNN)")
    if image and getattr(config, "baseline", None) in ("linear", "critic"):
        raise ConfigError(f"--baseline {config.baseline} fits flat observations; on {config.env_id}'s frames use "
                          "--baseline none, mean or moving")


def default_run_name(config: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{config.algo}-{config.env_id.replace('/', '_')}-s{config.seed}-{stamp}"


def _can_create_in(folder: str) -> bool:
    """Whether a folder can be made in `folder` (os.access alone is fooled by e.g. /proc, or by root)."""
    import tempfile

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
        raise ConfigError(f"export directory {export_path} already exists; pass --overwrite or choose another --run-name")
    for d in filter(None, [config.logdir, config.export_dir if config.export else None]):
        probe = os.path.abspath(d)
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if not os.path.isdir(probe) or not _can_create_in(probe):
            raise ConfigError(f"cannot write under {os.path.abspath(d)} ({probe} is not a writable folder); "
                              "choose another --logdir/--export-dir")
    return run_dir, export_path


def check_resume(run_dir: str, algo: str | None, env_id: str | None, preset: str | None,
                 overrides: dict) -> tuple[RunConfig, str, str | None]:
    """The saved configuration of `run_dir`, checked against the flags given with --resume."""
    import json

    from tfpg.checkpoint import CHECKPOINT_DIR
    from tfpg.config import CONFIG_CLASSES, validate

    run_dir = os.path.abspath(run_dir)
    config_file = os.path.join(run_dir, "config.json")
    if not os.path.isfile(config_file):
        raise ConfigError(f"--resume {run_dir}: no config.json there; pass a run folder written by train.py (runs/<run-name>)")
    ckpt_state = os.path.join(run_dir, CHECKPOINT_DIR, "checkpoint")
    if not os.path.isfile(ckpt_state):
        raise ConfigError(f"--resume {run_dir}: the run has no checkpoint yet (train with --checkpoint-every N, "
                          "or stop it with Ctrl-C, to get one)")
    with open(config_file) as f:
        saved = json.load(f)
    if algo is not None and algo != saved.get("algo"):
        raise ConfigError(f"--resume {run_dir} holds a checkpoint of --algo {saved.get('algo')}, not {algo}")
    if env_id is not None and env_id != saved.get("env_id"):
        raise ConfigError(f"--resume {run_dir} holds a checkpoint for {saved.get('env_id')}, not {env_id}")
    extra = sorted(k for k, v in overrides.items() if v is not None and k not in ("total_steps", "progress"))
    if preset is not None or extra:
        flag = "--preset" if preset is not None else "--" + extra[0].replace("_", "-")
        raise ConfigError(f"{flag} cannot be changed when resuming: --resume continues with the run's saved configuration")
    cls = CONFIG_CLASSES.get(saved.get("algo"))
    if cls is None:
        raise ConfigError(f"--resume {run_dir}: unknown algorithm {saved.get('algo')!r} in config.json")
    try:
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
        if overrides.get("total_steps") is not None:
            values["total_steps"] = overrides["total_steps"]
        if overrides.get("progress") is not None:
            values["progress"] = overrides["progress"]
        config = cls(**values)
    except TypeError as e:
        raise ConfigError(f"--resume {run_dir}: config.json does not fit this tfpg ({e})") from None
    validate(config)
    name = os.path.basename(run_dir)
    export_path = os.path.abspath(os.path.join(config.export_dir, name)) if config.export else None
    return config, run_dir, export_path


def run_algorithm(config: RunConfig, run_dir: str, export_path: str | None, resume: bool = False):
    """Train; TensorFlow is imported only from here on, so bad input fails fast and quietly."""
    if config.algo == "reinforce":
        from tfpg.algos import reinforce

        return reinforce.train(config, run_dir, export_path, resume=resume)
    if config.algo == "dqn":
        from tfpg.algos import dqn

        return dqn.train(config, run_dir, export_path, resume=resume)
    raise ConfigError(f"unknown algorithm {config.algo!r}")
