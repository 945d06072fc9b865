"""The Python API: an agent is an algorithm on an env with its run folder, built the way `python train.py`
builds a run (the command line calls these same functions: one path for every option, check and file).

    agent = tfpg.PPO("CartPole-v1", seed=0, lr=3e-4)      # options by field name (the flags' names)
    agent.learn(100_000)                                   # env steps along the --total-steps horizon
    agent.predict(obs)                                     # greedy action(s), numpy in and out
    agent.save("runs/my-run"); agent = tfpg.load("runs/my-run")
    agent.export("saved_models/my-run")                    # the CLI's SavedModel
    tfpg.train(algo="ppo", env="CartPole-v1", total_steps=100_000)   # all of it, as the CLI does
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Union

import gymnasium as gym
import numpy as np

from tfpg.config.options import unknown_choice
from tfpg.core.errors import ConfigError
from tfpg.training.trainer import build_trainer

# What `env` may be: a gymnasium id, an Env instance, a zero-argument factory; None: the preset's env or CartPole-v1.
EnvLike = Union[str, gym.Env, Callable[[], gym.Env], None]


def _all_option_names() -> set[str]:
    from tfpg.algos.registry import config_classes

    return {f.name for cls in config_classes().values() for f in dataclasses.fields(cls)} - {"algo"}


def _env_id(env, options: dict) -> str | None:
    """The id a run builds its envs from. A gymnasium Env instance or a zero-argument factory is registered
    under python/<module>.<name> (`tfpg.envs.python_envs`); an instance is one env, so num_envs defaults to 1."""
    from tfpg.envs.python_envs import register_python_env

    if env is None or isinstance(env, str):
        return env
    if isinstance(env, gym.Env):
        if options.get("num_envs", 1) != 1:
            raise ConfigError(f"an env instance is one env, not num_envs={options['num_envs']}: pass a zero-argument "
                              "factory (a function or class that returns a new env) for several")
        if options.get("eval_every"):
            raise ConfigError("an env instance is the one training env; evaluations need envs of their own: pass a "
                              "zero-argument factory instead, or drop eval_every")
        if options.get("workers"):
            raise ConfigError("an env instance is one env in this process; Ray workers build their own: pass a "
                              "zero-argument factory (defined at module level) instead")
        options.setdefault("num_envs", 1)
        return register_python_env(env)
    if callable(env):
        return register_python_env(env)
    raise ConfigError(f"env must be a gymnasium id, an Env instance or a zero-argument factory, got {env!r}")


def configure(algo: str | None, env, preset: str | None, options: dict[str, Any]):
    """(config, run_dir, export_path) of a new run, every option checked; ConfigError (one line) otherwise.
    Creates nothing."""
    from tfpg.algos.registry import build_config, given_options
    from tfpg.training.checks import check_run

    known = _all_option_names()
    for name in options:
        if name not in known:
            raise ConfigError(unknown_choice("option", name, sorted(known)))
    options = dict(options)
    env_id = _env_id(env, options)
    config = build_config(algo, env_id, preset, options)
    return (config, *check_run(config, given_options(options)))


class Agent:
    """An algorithm on an env, with its run folder (TensorBoard events, config.json, checkpoints).

    Args:
        env: a gymnasium id (`"CartPole-v1"`, `"mypkg.envs:Corridor-v0"` imports `mypkg.envs` first), a
            gymnasium `Env` instance (one env), or a zero-argument factory (a function or class; `num_envs`
            of them, and one per Ray worker). None: the preset's env, else CartPole-v1.
        algo: the registered algorithm; set by the classes `tfpg.PPO`, `tfpg.DQN`, ...
        preset: named settings (`python train.py --list-presets`); options given here override it.
        **options: any option by its field name, as the flags reference lists them (`lr=3e-4`,
            `total_steps=100_000`, `env_kwargs={...}`, `workers=2`, ...).

    Building the agent checks every option and the env the way the command line does (ConfigError with the
    CLI's one-line message), then builds the envs and networks and creates the run folder.
    `total_steps` is the horizon of the schedules (learning-rate and clip decay, epsilon).
    """

    algo: ClassVar[str | None] = None

    def __init__(self, env: EnvLike = None, *, algo: str | None = None, preset: str | None = None, **options: Any):
        config, run_dir, export_path = configure(algo or type(self).algo, env, preset, options)
        self._open(build_trainer(config, run_dir, export_path))

    def _open(self, trainer) -> None:
        self._trainer = trainer
        self.result = None

    @classmethod
    def _from_trainer(cls, trainer) -> Agent:
        agent = cls.__new__(cls)
        agent._open(trainer)
        return agent

    # --- what the agent is ---------------------------------------------------------------------
    @property
    def config(self):
        """The run's resolved configuration (a dataclass of every option)."""
        return self._trainer.config

    @property
    def run_dir(self) -> str:
        return self._trainer.run_dir

    @property
    def env_steps(self) -> int:
        return self._trainer.env_steps

    @property
    def episodes(self) -> int:
        return self._trainer.agents[0].stats.episodes

    @property
    def policy(self):
        """The Keras model of the policy (the Q-network for DQN; agent 0's on the graph backend)."""
        return self._trainer._select(0).model

    @property
    def networks(self) -> dict:
        """Every Keras model the algorithm trains, by name (policy, critic, target network, ...)."""
        import keras

        return {name: obj for name, obj in self._trainer.trackables.items() if isinstance(obj, keras.Model)}

    # --- training ------------------------------------------------------------------------------
    def learn(self, steps: int | None = None, callbacks: Sequence = ()) -> Agent:
        """Train `steps` more env steps (None: up to `total_steps`), or until a callback returns False, the
        stop test (`stop_reward`) passes or SIGINT/SIGTERM arrives. Training ends at the first iteration (a
        batch) past the target, and a later learn(n) counts n from this call's target, not from where the
        overshoot left it: learn(n) twice ends where learn(2n) does. The schedules run along `total_steps`.
        Returns the agent; `agent.result` is the RunResult so far."""
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
            raise ConfigError(f"learn(steps) takes a positive number of env steps, got {steps!r}")
        self.result = self._trainer.learn(steps, callbacks)
        if self.result.interrupted_by is not None:
            name = signal.Signals(self.result.interrupted_by).name
            print(f"interrupted by {name} at {self.env_steps:,} env steps; a checkpoint was written in "
                  f"{self.run_dir}", file=sys.stderr)
        return self

    def run(self, callbacks: Sequence = ()):
        """What `python train.py` does: learn up to `total_steps`, a last evaluation, the export (unless
        `export=False`) and summary.json; then the envs close. Returns the RunResult."""
        self.result = self._trainer.run(callbacks)
        return self.result

    # --- acting --------------------------------------------------------------------------------
    def predict(self, observations, deterministic: bool = True) -> np.ndarray:
        """The action for one observation, or the actions for a batch (numpy in, numpy out), as env.step takes
        them. deterministic: the greedy action (the exported SavedModel's serving_default); else drawn from the
        policy (DQN: epsilon-greedy at the current epsilon) with a generator of its own, so predicting does not
        change what training samples next."""
        policy = self._trainer._select(0)
        space = self._trainer.spaces.observation_space
        obs = np.asarray(observations, dtype=space.dtype)
        single = obs.shape == space.shape
        if not single and obs.shape[1:] != space.shape:
            raise ConfigError(f"predict takes observations of shape {space.shape} or a batch (n, "
                              f"{', '.join(map(str, space.shape))}), got {obs.shape}")
        batch = obs[None] if single else obs
        actions = policy.greedy_numpy(batch) if deterministic else self._sample(policy, batch)
        return actions[0] if single else actions

    def _sample(self, policy, batch: np.ndarray) -> np.ndarray:
        if not hasattr(self, "_predict_rng"):
            self._predict_rng = np.random.default_rng(self.config.seed + 1)
        if not hasattr(policy, "sample"):   # a Q-network: epsilon-greedy
            eps = self._trainer.algo.epsilon() if hasattr(self._trainer, "algo") else 0.0
            greedy = policy.greedy_numpy(batch)
            explore = self._predict_rng.random(len(batch)) < eps
            return np.where(explore, self._predict_rng.integers(0, policy.num_actions, len(batch)), greedy)
        import tensorflow as tf

        seed = tf.constant(self._predict_rng.integers(0, 2**31 - 1, 2), tf.int32)
        return policy.clip_action(policy.sample(tf.convert_to_tensor(batch), seed)).numpy()

    # --- files ---------------------------------------------------------------------------------
    def save(self, path: str | None = None) -> str:
        """A checkpoint of everything training needs (networks, optimizers, generators, counters, DQN's replay
        with checkpoint_replay), with config.json, in `path` (default: the run folder). As at every checkpoint,
        the running episodes end and the envs restart from a seed of (seed, env steps): this agent and one
        loaded from `path` continue identically. Returns the checkpoint's path."""
        return self._trainer.checkpoint_now(None if path is None else os.path.abspath(path))

    def export(self, path: str | None = None, overwrite: bool = False) -> str:
        """The SavedModel the CLI writes (greedy `serving_default`, `sample`, metadata), at `path` (default: the
        run's export path, `export_dir`/<run-name>); on the graph backend with several agents one per agent in
        seed_<s>/. An existing folder other than the run's own export needs overwrite=True. Returns the path."""
        trainer = self._trainer
        path = os.path.abspath(path) if path else trainer.export_path
        if path is None:
            raise ConfigError("this run has no export path (export=False): pass one, agent.export(path)")
        if path != trainer.export_path and os.path.exists(path) and os.listdir(path) and not overwrite:
            raise ConfigError(f"export directory {path} already exists; pass overwrite=True or another path")
        for k, agent in enumerate(trainer.agents):
            trainer.export_agent(k, path if len(trainer.agents) == 1 else os.path.join(path, f"seed_{agent.seed}"))
        return path

    def close(self) -> None:
        """Close the envs (or Ray workers) and the run's event files."""
        self._trainer.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.env_id!r}, run_dir={self.run_dir!r}, env_steps={self.env_steps})"


class REINFORCE(Agent):
    """REINFORCE and its baselines (docs: Algorithms › REINFORCE)."""

    algo = "reinforce"


class DQN(Agent):
    """DQN with replay, epsilon-greedy and a target network (docs: Algorithms › DQN)."""

    algo = "dqn"


class A2C(Agent):
    """Advantage actor-critic (docs: Algorithms › A2C)."""

    algo = "a2c"


class PPO(Agent):
    """Proximal policy optimisation (docs: Algorithms › PPO)."""

    algo = "ppo"


class TRPO(Agent):
    """Trust-region policy optimisation (docs: Algorithms › TRPO and NPG)."""

    algo = "trpo"


class NPG(Agent):
    """Natural policy gradient (docs: Algorithms › TRPO and NPG)."""

    algo = "npg"


# The class of each built-in algorithm (an algorithm registered from outside tfpg gets Agent).
AGENT_CLASSES: dict[str, type[Agent]] = {cls.algo: cls for cls in (REINFORCE, DQN, A2C, PPO, TRPO, NPG)}



def make_agent(algo: str | None = None, env: EnvLike = None, preset: str | None = None, **options: Any) -> Agent:
    """The agent of a registered algorithm by name (None: the preset's, else reinforce)."""
    from tfpg.algos.registry import find_preset

    name = algo or (find_preset(preset).algo if preset else None)
    cls = AGENT_CLASSES.get(name, Agent)
    return cls(env, algo=algo, preset=preset, **options)


def train(algo: str | None = None, env: EnvLike = None, preset: str | None = None, callbacks: Sequence = (),
          **options: Any):
    """Everything `python train.py` does, from Python: build the agent, learn up to `total_steps`, evaluate,
    export, write summary.json; returns the RunResult."""
    return make_agent(algo, env, preset, **options).run(callbacks)


def load(path: str, env: EnvLike = None, *, algo: str | None = None, preset: str | None = None, **options: Any) -> Agent:
    """The agent saved in run folder `path`, at its newest intact checkpoint, with its saved configuration;
    `learn()` continues exactly where it was saved. Only total_steps, progress, ray_address and ray_num_cpus may
    change. `env`: the factory or instance again, for a run whose env was given from Python (an id given here
    must be the saved one). algo/preset: refused unless they are the saved ones (the CLI's --resume checks)."""
    from tfpg.envs.python_envs import is_python_env_id, python_env_message, register_python_env
    from tfpg.training.checks import check_resume

    env_id = env if isinstance(env, str) else None
    config, run_dir, export_path, validated = check_resume(path, algo, env_id, preset, options)
    if is_python_env_id(config.env_id):
        if env is None or isinstance(env, str):
            raise ConfigError(python_env_message(config.env_id, run_dir))
        register_python_env(env, config.env_id)
    elif env is not None and env_id is None:
        raise ConfigError(f"{run_dir} trained on {config.env_id}, which is rebuilt from its id: drop env=")
    cls = AGENT_CLASSES.get(config.algo, Agent)
    return cls._from_trainer(build_trainer(config, run_dir, export_path, resume=True, validated=validated))
