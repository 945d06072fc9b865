"""The options every run shares (`RunConfig`, `LearnerConfig`, `PolicyGradientConfig`) and the `Preset` record.

Each algorithm's own options are a subclass of one of these in its folder (`tfpg.algos.<name>.config`);
every field is declared once with `tfpg.config.options.option` (help, choices, bounds). Resolving
algo/env/preset/flags into one config is the registry's (`tfpg.algos.registry.build_config`), since it
needs the algorithms. Validation happens before any environment or model is built.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tfpg.config.options import check_fields, option
from tfpg.core.errors import ConfigError

DEFAULT_ALGO = "reinforce"
DEFAULT_ENV = "CartPole-v1"
VECTOR_MODES = ("auto", "sync", "async", "vector_entry_point")
BACKENDS = ("gym", "graph")


@dataclass
class RunConfig:
    """Options every algorithm shares: the env, the budget, stopping, evaluation, output."""

    algo: str = option("", "the algorithm (set by --algo)", hparam=True)
    env_id: str = option(DEFAULT_ENV, "gymnasium environment id; MODULE:ID imports MODULE first (your own envs: "
                                      "see the guide's Your own environment)")
    env_module: str | None = option(None, "import this package before looking up --env, for one that registers its "
                                          "envs on import (minigrid); the same as --env PKG:ID, which is what "
                                          "config.json records", hparam=False, metavar="PKG")
    env_kwargs: dict | None = option(None, "keyword arguments of the env's constructor, values as Python literals: "
                                           "--env-kwargs length=4 name='x' (tuples become lists, as JSON stores "
                                           "them)", metavar="KEY=VALUE")
    seed: int = option(0, "random seed for TF, numpy and the envs", low=0, high=2**31 - 1)
    total_steps: int = option(500_000, "env-step budget (real transitions, all envs together)", low=1)
    stop_reward: float | None = option(None, "stop once the --stop-on measure reaches this; unset: never stop early")
    stop_on: str = option("train", "train: reward_100 of the training episodes; eval: the greedy evaluation mean "
                                   "(needs --eval-every)", choices=("train", "eval"))
    eval_every: int = option(0, "greedy evaluation every this many env steps, logged as eval/reward; 0 = never",
                             low=0)
    eval_episodes: int = option(10, "episodes per greedy evaluation (episode k starts from reset seed 1000000 + k)",
                                low=1)
    num_envs: int = option(8, "environments stepped together", low=1)
    vector_mode: str = option("auto", "auto: gymnasium's batched env where one exists, else in-process sync",
                              choices=VECTOR_MODES)
    terminal_on_life_loss: bool = option(False, "Atari: end an episode at each life lost (gymnasium's "
                                                "AtariPreprocessing restarts the game then)")
    logdir: str = option("runs", "TensorBoard runs go to LOGDIR/<run-name>", hparam=False)
    export_dir: str = option("saved_models", "SavedModels go to EXPORT_DIR/<run-name>", hparam=False)
    export: bool = option(True, "do not export a SavedModel at the end", flag="--no-export", hparam=False)
    overwrite: bool = option(False, "allow replacing an existing export", flag="--overwrite", hparam=False)
    run_name: str | None = option(None, "folder name of the run (unset: <algo>-<env>-s<seed>-<time>)", hparam=False)
    progress: bool = option(True, "no progress bar", flag="--no-progress", hparam=False)
    checkpoint_every: int = option(0, "write a checkpoint every N env steps (running episodes end there and the envs "
                                      "are re-seeded, so a resumed run continues exactly); 0 = only on Ctrl-C/SIGTERM",
                                   low=0, hparam=False)
    max_nonfinite: int = option(5, "non-finite updates are skipped; stop after this many in a row", low=1,
                                hparam=False)
    export_best: bool = option(False, "export the policy of the best greedy evaluation instead of the last one "
                                      "(needs --eval-every)")
    backend: str = option("gym", "gym: gymnasium vector envs stepped from Python; graph: the env as TensorFlow ops "
                                 "(tfpg.envs.graph) and each iteration (rollout + update) one XLA-compiled program",
                          choices=BACKENDS)
    num_seeds: int = option(1, "--backend graph: train K independent agents at once, seeds --seed ... --seed + K - 1, "
                               "each logged in RUN_DIR/seed_<s> and exported to EXPORT_DIR/<run-name>/seed_<s>", low=1)
    rollout_steps: int = option(64, "--backend graph: steps of each env per iteration (a fixed horizon T: an update "
                                    "sees --num-envs x T transitions)", low=1)
    intra_op_threads: int = option(0, "threads of TensorFlow's (and XLA's) intra-op pool: 0 = TensorFlow's default "
                                       "(one per core); 1 runs each op on one thread, which can suit the small ops "
                                       "of --backend graph on a busy machine", low=0, hparam=False)
    workers: int = option(0, "collect on N Ray actors, each with its own envs and a CPU copy of the policy (needs "
                             "pip install -e \".[ray]\"); 0 = in this process", low=0)
    envs_per_worker: int = option(0, "envs stepped together in each worker; 0 = --num-envs", low=0)
    ray_address: str | None = option(None, "join a running Ray cluster: auto, or the HOST:PORT `ray start --head` "
                                           "printed; unset: start a local Ray instance for the run", hparam=False)
    ray_num_cpus: int = option(0, "CPUs of the local Ray instance; 0 = the machine's", low=0, hparam=False)

    @classmethod
    def group_title(cls) -> str:
        return "run"

    @classmethod
    def group_help(cls) -> str | None:
        return None

    def check(self) -> None:
        """Rules between fields (each field's own type and range are checked from its declaration)."""
        if self.run_name is not None and (not self.run_name or "/" in self.run_name or self.run_name in (".", "..")):
            raise ConfigError(f"--run-name must be a plain folder name, got {self.run_name!r}")
        if not self.env_id:
            raise ConfigError("--env must be a gymnasium environment id such as CartPole-v1")
        if self.env_module is not None and ":" in self.env_id:
            raise ConfigError(f"--env {self.env_id} names its module already: drop --env-module {self.env_module}, "
                              "or the MODULE: prefix of --env")
        if self.env_module is not None and not self.env_module:
            raise ConfigError("--env-module must name a package to import, e.g. --env-module minigrid")
        if self.stop_on == "eval" and self.eval_every == 0:
            raise ConfigError("--stop-on eval needs greedy evaluations; set --eval-every to a positive number of env "
                              "steps, or pass --stop-on train")
        if self.export_best and not self.eval_every:
            raise ConfigError("--export-best needs evaluations to choose from: add --eval-every N")
        if self.num_seeds > 1 and self.backend != "graph":
            raise ConfigError(f"--num-seeds {self.num_seeds} trains agents side by side in one compiled program: add "
                              "--backend graph, or run one seed at a time")
        self._check_workers()

    def check_given(self, given: frozenset[str]) -> None:
        """Rules on the options given as flags (`given`: their field names) that the rest of the config makes
        inert. Values cannot tell these apart: a default or a preset may hold the same value."""

    def _check_workers(self) -> None:
        import importlib.util

        if not self.workers:
            given = [flag for flag, value in (("--envs-per-worker", self.envs_per_worker),
                                              ("--ray-address", self.ray_address),
                                              ("--ray-num-cpus", self.ray_num_cpus)) if value]
            if given:
                raise ConfigError(f"{given[0]} applies to Ray rollout workers: add --workers N")
            return
        if importlib.util.find_spec("ray") is None:
            raise ConfigError('--workers needs Ray, an optional extra: pip install -e ".[ray]"')
        if self.ray_address is not None and self.ray_num_cpus:
            raise ConfigError("--ray-num-cpus sizes the local Ray instance; a cluster joined with --ray-address "
                              "has its own CPUs: drop one of the two")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def hparams(self) -> dict[str, Any]:
        """The real hyperparameters (TensorBoard's HPARAMS tab): no paths, switches of the run's bookkeeping."""
        from tfpg.config.options import declaration

        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if declaration(type(self), f.name)["hparam"] and getattr(self, f.name) is not None}


@dataclass
class LearnerConfig(RunConfig):
    """Options of the algorithms that train networks by gradient steps (REINFORCE family, DQN)."""

    hidden: tuple[int, ...] = option((128,), "hidden layer widths of the policy or Q-network, comma separated")
    lr: float = option(1e-3, "learning rate of the optimizer (Adam unless --optimizer says otherwise)", low=0.0,
                       low_open=True, high=1.0)
    adam_eps: float = option(1e-7, "Adam epsilon (A2C's --optimizer rmsprop takes it as its epsilon too)", low=0.0,
                             low_open=True)
    gamma: float = option(0.99, "discount factor", low=0.0, high=1.0)
    grad_clip: float = option(0.0, "global L2 gradient-norm clip; 0 = off", low=0.0)

    @classmethod
    def group_title(cls) -> str:
        return "networks and optimizer"


@dataclass
class PolicyGradientConfig(LearnerConfig):
    """Options of the stochastic-policy algorithms (REINFORCE family, A2C, PPO, TRPO/NPG): the policy, the
    critic, advantages; each algorithm refuses the ones it does not use (see its check())."""

    policy: str = option("auto", "auto: categorical for Discrete actions, diagonal gaussian for Box actions",
                         choices=("auto", "categorical", "gaussian"))
    activation: str = option("relu", "hidden-layer activation of the policy network", choices=("relu", "tanh"))
    normalize_obs: bool = option(False, "running mean/var observation normalisation inside the policy (exported "
                                        "with it); flat observations only: on frames the CNN scales the pixels")
    normalize_reward: bool = option(False, "scale rewards by the running std of the discounted return (clipped to "
                                            "+-10) before the critic and the advantages see them; the logged returns "
                                            "stay the env's")
    log_std_init: float = option(0.0, "initial log-std of the Gaussian policy, a trainable vector (0: sigma = 1)",
                                 low=-5.0, high=2.0)
    critic_hidden: tuple[int, ...] = option((64, 64), "critic layer widths, comma separated")
    critic_activation: str = option("relu", "hidden-layer activation of the critic", choices=("relu", "tanh"))
    critic_lr: float = option(1e-3, "critic Adam learning rate", low=0.0, low_open=True, high=1.0)
    critic_epochs: int = option(1, "critic passes over each batch (reinforce: full-batch steps; trpo: passes of "
                                   "--minibatch-size minibatches)", low=1)
    gae_lambda: float = option(0.95, "lambda of the GAE(lambda) advantages (reinforce: of --returns lambda)",
                               low=0.0, high=1.0)
    normalize: bool = option(False, "standardise advantages to mean 0, std 1 per batch")
    entropy_beta: float = option(0.0, "entropy bonus scale beta", low=0.0)
    minibatch_size: int = option(256, "steps per shuffled minibatch (reinforce: of --update minibatch; ppo: each "
                                      "gradient step; trpo: each critic step)", low=1)
    target_kl: float = option(0.0, "stop reusing a batch once the sampled KL(pi_old || pi) on it exceeds this "
                                   "(ppo: 1.5 x this, checked before each minibatch step; a2c: only the target of "
                                   "--kl-adaptive-lr; reinforce: also its target); 0 = off", low=0.0)
    kl_adaptive_lr: bool = option(False, "after each update: Adam lr / 1.5 if its KL(pi_old || pi) on the batch > "
                                         "2 x --target-kl, x 1.5 (at most --lr, or its linear schedule) if < "
                                         "--target-kl / 2")

    @classmethod
    def group_title(cls) -> str:
        return "policy, critic and advantages"

    def check(self) -> None:
        super().check()
        if self.kl_adaptive_lr and not self.target_kl:
            raise ConfigError(f"--kl-adaptive-lr steers the lr by the batch KL against --target-kl: set --target-kl "
                              f"> 0 (e.g. {type(self).target_kl or 0.02}), or --kl-adaptive-lr false")


@dataclass(frozen=True)
class Preset:
    """Named settings for one algorithm on one env, citing where they come from.

    `default` makes it the preset used when only --algo/--env are given; `replaces` lists old
    names that still select it (with a deprecation notice)."""

    name: str
    algo: str
    description: str
    source: str
    overrides: dict[str, Any] = field(default_factory=dict)
    default: bool = False
    replaces: tuple[str, ...] = ()

    @property
    def env_id(self) -> str:
        return self.overrides.get("env_id", DEFAULT_ENV)


# Options added after runs were written: the value that reproduces how such a run trained, for --resume of a
# config.json without the field (the dataclass default may have moved since: normalize_reward is on by default
# for the actor-critics, A2C's critic is tanh and its lr KL-adaptive, while runs from before trained without, with
# ReLU and with a fixed lr).
FIELDS_ADDED_LATER = {"normalize_reward": False, "critic_activation": "relu", "kl_adaptive_lr": False}


def with_fields_added_later(saved: dict, config_class) -> dict:
    """A saved configuration with every field of FIELDS_ADDED_LATER that `config_class` has and `saved` lacks."""
    known = {f.name for f in dataclasses.fields(config_class)}
    return {**{k: v for k, v in FIELDS_ADDED_LATER.items() if k in known and k not in saved}, **saved}


def with_env_module(config: RunConfig) -> RunConfig:
    """`config` with --env-module PKG folded into the env id as PKG:ID: the one string that config.json, exports'
    metadata and Ray workers pass on, which imports PKG wherever an env is built (a fresh process included)."""
    if config.env_module is None:
        return config
    return dataclasses.replace(config, env_id=f"{config.env_module}:{config.env_id}", env_module=None)


def validate(config: RunConfig) -> None:
    """Each field's type, choices and bounds from its declaration, then the config's cross-field rules."""
    check_fields(config)
    config.check()
