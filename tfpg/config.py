"""Configuration: one dataclass per algorithm, named presets per environment, validation.

Precedence when a run is configured: dataclass defaults < preset < explicit command-line flags.
Validation happens here, before any environment or model is built, so a bad value costs nothing.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from tfpg.errors import ConfigError


@dataclass
class RunConfig:
    """Settings every algorithm shares."""

    algo: str = ""
    env_id: str = "CartPole-v1"
    seed: int = 0
    total_steps: int = 500_000          # env-step budget (real transitions, all envs together)
    stop_reward: float | None = None    # stop once the stop_on measure >= this; None: never stop early
    stop_on: str = "train"              # train: reward_100 of the training episodes; eval: greedy evaluation mean
    eval_every: int = 0                 # greedy evaluation every this many env steps; 0: never
    eval_episodes: int = 10             # episodes per greedy evaluation
    num_envs: int = 8
    vector_mode: str = "auto"           # auto | sync | async | vector_entry_point
    hidden: tuple[int, ...] = (128,)
    lr: float = 1e-3
    logdir: str = "runs"
    export_dir: str = "saved_models"
    export: bool = True
    overwrite: bool = False
    run_name: str | None = None
    progress: bool = True
    checkpoint_every: int = 0           # env steps between checkpoints; 0: only on interrupt
    max_nonfinite: int = 5              # stop after this many non-finite updates in a row
    export_best: bool = False           # export the policy of the best evaluation, not the last one
    terminal_on_life_loss: bool = False  # Atari: end the episode at each life lost (AtariPreprocessing's option)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


@dataclass
class ReinforceConfig(RunConfig):
    """The policy-gradient family: REINFORCE and the book's vanilla N-step PG.

    loss = -mean_t( w_t * A_t * log pi(a_t|s_t) ) - entropy_beta * mean_t H(pi(.|s_t)),
    A_t = G_t - b(s_t) (optionally standardised), w_t = 1 on-policy or the importance ratio
    pi(a_t|s_t)/pi_old(a_t|s_t) when a batch is reused.
    """

    algo: str = "reinforce"
    policy: str = "auto"                # auto (Discrete -> categorical, Box -> gaussian) | categorical | gaussian
    activation: str = "relu"            # hidden-layer activation of the policy network: relu | tanh
    normalize_obs: bool = False         # running mean/var observation normalisation inside the policy
    log_std_init: float = 0.0           # initial log-std of the Gaussian policy (0: sigma = 1, as in the post)
    log_std_lr: float = 0.0             # Adam learning rate of the Gaussian log-std; 0: the same optimizer as --lr
    std_ceiling: float = 0.0            # Gaussian sigma capped by a ceiling falling to this value; 0: no ceiling
    std_ceiling_steps: int = 500_000    # env steps over which the ceiling falls (log-linearly) from exp(log_std_init)
    gamma: float = 0.99
    lr: float = 0.01
    adam_eps: float = 1e-7
    returns: str = "reward_to_go"       # reward_to_go | total | nstep | lambda
    n_steps: int = 10                   # for returns=nstep (the book's REWARD_STEPS)
    gae_lambda: float = 0.95            # for returns=lambda: TD(lambda) returns, advantages = GAE(lambda)
    update: str = "batch"               # batch (1/sum T_i) | episode (1/T per episode) | step | minibatch
    minibatch_size: int = 256           # for update=minibatch: steps per shuffled minibatch
    episodes_per_update: int = 4        # complete episodes per update (episode returns)
    steps_per_update: int = 0           # at least this many steps per update; for nstep: the batch size
    baseline: str = "none"              # none | mean | moving | linear | critic
    baseline_window: int = 1_000_000    # transitions in the moving-average baseline
    critic_hidden: tuple[int, ...] = (64, 64)
    critic_lr: float = 1e-3
    critic_epochs: int = 1              # critic gradient steps per batch
    normalize: bool = False             # standardise advantages to mean 0, std 1 per batch
    entropy_beta: float = 0.0
    grad_clip: float = 0.0              # global L2-norm clip; 0 disables
    reuse_epochs: int = 1               # gradient steps per batch; > 1 uses importance weights
    is_clip: float = 0.0                # truncate importance ratios at this value; 0 disables
    target_kl: float = 0.0              # stop reusing a batch once KL(pi_old || pi) exceeds this; 0 disables
    kl_adaptive_lr: bool = False        # lr / 1.5 when a batch's KL > 2 target_kl, x 1.5 (up to --lr) when < target_kl / 2
    grad_var_every: int = 0             # measure gradient variance every this many updates; 0: never

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["critic_hidden"] = list(self.critic_hidden)
        return d


RETURN_KINDS = ("reward_to_go", "total", "nstep", "lambda")
POLICY_KINDS = ("auto", "categorical", "gaussian")   # mirrors tfpg.policies (no TensorFlow import here)
ACTIVATIONS = ("relu", "tanh")
UPDATE_RULES = ("batch", "episode", "step", "minibatch")
BASELINE_KINDS = ("none", "mean", "moving", "linear", "critic")


@dataclass
class DQNConfig(RunConfig):
    """DQN (Mnih et al. 2015): Q-learning with experience replay and a target network.

    y = r + gamma * (1 - terminated) * max_a' Q_target(s', a')
    loss = mean_batch L(Q(s, a) - y),  L = squared error or Huber
    """

    algo: str = "dqn"
    num_envs: int = 1
    hidden: tuple[int, ...] = (64, 64)
    gamma: float = 0.99
    lr: float = 1e-3
    adam_eps: float = 1e-7
    buffer_size: int = 50_000
    learning_starts: int = 1_000        # env steps of uniformly random actions before the first update
    batch_size: int = 64
    train_freq: int = 1                 # vector steps between updates
    gradient_steps: int = 1             # gradient steps per update
    target_sync: int = 10               # gradient steps between target-network updates
    tau: float = 1.0                    # target <- tau * online + (1 - tau) * target; 1 = overwrite
    loss: str = "mse"                   # mse | huber
    double: bool = False                # Double DQN target: Q_target(s', argmax_a' Q(s', a'))
    grad_clip: float = 0.0              # global L2-norm clip; 0 disables
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_steps: int = 10_000       # env steps from eps_start to eps_end
    eps_schedule: str = "linear"        # linear | exponential
    log_every: int = 1_000              # env steps between diagnostics
    checkpoint_replay: bool = True      # store the replay buffer in checkpoints (exact resume; costs its size on disk)


CONFIG_CLASSES: dict[str, type[RunConfig]] = {"reinforce": ReinforceConfig, "dqn": DQNConfig}
LOSS_KINDS = ("mse", "huber")
EPS_SCHEDULES = ("linear", "exponential")
STOP_ON = ("train", "eval")
VECTOR_MODES = ("auto", "sync", "async", "vector_entry_point")


@dataclass(frozen=True)
class Preset:
    name: str
    algo: str
    description: str
    source: str
    overrides: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "cartpole-reinforce",
            "reinforce",
            "REINFORCE on CartPole-v1 tuned for wall-clock speed to reward_100 >= 475",
            "tfpg (tuned; see benchmarks/README table)",
            dict(env_id="CartPole-v1", num_envs=128, hidden=(128,), lr=0.02, gamma=0.99,
                 episodes_per_update=32, returns="reward_to_go", normalize=True,
                 stop_reward=475.0, total_steps=1_000_000),
        ),
        Preset(
            "seed000-cartpole-reinforce",
            "reinforce",
            "the book's REINFORCE: 128 hidden, Adam 0.01, gamma 0.99, 4 episodes/update, no baseline",
            "Deep RL Hands-On 2/E ch. 11, 02_cartpole_reinforce.py (REFERENCE.md 000)",
            dict(env_id="CartPole-v1", num_envs=1, hidden=(128,), lr=0.01, gamma=0.99,
                 episodes_per_update=4, returns="reward_to_go", normalize=False, baseline="none",
                 stop_reward=475.0, total_steps=1_000_000),
        ),
        Preset(
            "seed000-cartpole-pg",
            "reinforce",
            "the book's vanilla PG: 10-step returns, batches of 8 transitions, mean baseline, entropy 0.01, Adam 0.001",
            "Deep RL Hands-On 2/E ch. 11, 04_cartpole_pg.py (REFERENCE.md 000)",
            dict(env_id="CartPole-v1", num_envs=1, hidden=(128,), lr=0.001, gamma=0.99,
                 returns="nstep", n_steps=10, steps_per_update=8, baseline="mean", entropy_beta=0.01,
                 normalize=False, stop_reward=475.0, total_steps=1_000_000),
        ),
        Preset(
            "seed002-batch-reinforce",
            "reinforce",
            "batch-episodic REINFORCE: update every 2 episodes over sum T_i, gamma 1, normalised returns, 128 hidden",
            "Fastcampus batch REINFORCE post (REFERENCE.md 002); the post gives no learning rate, 2e-4 used",
            dict(env_id="CartPole-v1", num_envs=1, hidden=(128,), lr=2e-4, gamma=1.0, update="batch",
                 episodes_per_update=2, returns="reward_to_go", normalize=True, baseline="none",
                 stop_reward=475.0, total_steps=1_000_000),
        ),
        Preset(
            "dqn-cartpole",
            "dqn",
            "DQN on CartPole-v1 tuned for wall-clock speed to a greedy evaluation mean >= 475",
            "tfpg (tuned; see the README results table and benchmarks/cartpole_dqn.py)",
            # Few large updates, as in Stable-Baselines3's zoo: 128 gradient steps (one compiled call)
            # every 256 env steps, the target overwritten once per update; the zoo's 256-256 network
            # (64-64 reached a greedy 475 within 50k steps on 1 seed of 3 on this machine, 256-256 on 3 of 3).
            dict(env_id="CartPole-v1", num_envs=4, hidden=(256, 256), lr=2.3e-3, gamma=0.99,
                 buffer_size=50_000, learning_starts=1_000, batch_size=64, train_freq=64, gradient_steps=128,
                 target_sync=128, tau=1.0, loss="huber", double=False, grad_clip=10.0,
                 eps_start=1.0, eps_end=0.04, eps_decay_steps=8_000, eps_schedule="linear",
                 eval_every=2_500, eval_episodes=10, stop_on="eval", stop_reward=475.0,
                 total_steps=100_000),
        ),
        Preset(
            "seed001-dqn-cartpole",
            "dqn",
            "the DQN post's CartPole setup: replay 50,000, random warm-up, target overwritten every 10 updates, "
            "gamma 0.99, MSE loss, decaying epsilon",
            "DQN on CartPole (PyTorch) post, REFERENCE.md 001; values the post leaves open (network, "
            "batch, lr, warm-up length, epsilon schedule) are tfpg's choices",
            dict(env_id="CartPole-v1", num_envs=1, hidden=(64, 64), lr=1e-3, gamma=0.99,
                 buffer_size=50_000, learning_starts=1_000, batch_size=64, train_freq=1, gradient_steps=1,
                 target_sync=10, tau=1.0, loss="mse", double=False, grad_clip=0.0,
                 eps_start=1.0, eps_end=0.05, eps_decay_steps=10_000, eps_schedule="linear",
                 stop_on="train", stop_reward=475.0, total_steps=200_000),
        ),
        Preset(
            "lunarlander-pg",
            "reinforce",
            "Gaussian PG on LunarLanderContinuous-v3 to reward_100 >= 200: GAE(0.98) from a Keras critic, "
            "KL-stopped minibatch reuse with a KL-adaptive lr, sigma capped by a ceiling falling to 0.3",
            "tfpg (tuned; see the README's LunarLanderContinuous results, run V1)",
            # KL-stopped reuse of large minibatches: each epoch is a small step, so --target-kl can stop
            # the batch before the policy moves far (the one-step-per-episode update collapsed on seed 1).
            # The sigma ceiling lets the sampling policy come to rest (the +100 landing bonus); the
            # KL-adaptive lr keeps the steps safe as sigma falls.
            dict(env_id="LunarLanderContinuous-v3", policy="gaussian", num_envs=16, vector_mode="sync",
                 hidden=(64, 64), activation="tanh", normalize_obs=True, gamma=0.999, returns="lambda",
                 gae_lambda=0.98, baseline="critic", critic_hidden=(64, 64), critic_lr=1e-3, critic_epochs=20,
                 normalize=True, steps_per_update=8000, episodes_per_update=1, update="minibatch",
                 minibatch_size=2000, reuse_epochs=10, target_kl=0.02, kl_adaptive_lr=True, is_clip=2.0, lr=3e-4,
                 grad_clip=0.5, entropy_beta=0.0, std_ceiling=0.3, std_ceiling_steps=400_000,
                 stop_reward=200.0, total_steps=2_000_000, eval_every=100_000, eval_episodes=10),
        ),
        Preset(
            "seed004-lunarlander",
            "reinforce",
            "the post's Gaussian REINFORCE: mean net 32-32 relu, free log-std, gamma 0.97, >= 3000 steps of "
            "complete episodes per update, scikit-learn linear baseline, standardised advantages, Adam 1e-3",
            "Gaussian policy gradient on LunarLanderContinuous (REFERENCE.md 004); TF1 Adam defaults (eps 1e-8)",
            dict(env_id="LunarLanderContinuous-v3", policy="gaussian", num_envs=8, vector_mode="sync",
                 hidden=(32, 32), activation="relu", normalize_obs=False, gamma=0.97, returns="reward_to_go",
                 baseline="linear", normalize=True, steps_per_update=3000, episodes_per_update=1,
                 update="batch", lr=1e-3, adam_eps=1e-8, entropy_beta=0.0, grad_clip=0.0,
                 stop_reward=200.0, total_steps=1_500_000),
        ),
        Preset(
            "book-pong-pg",
            "reinforce",
            "the book's PG on Pong: 32 envs, Nature CNN, Adam 1e-4 (eps 1e-3), entropy 0.01, batches of 128 "
            "transitions, 10-step returns, moving baseline over 1,000,000 transitions, grad clip 0.1, stop at 18",
            "Deep RL Hands-On 2/E ch. 11, 05_pong_pg.py (REFERENCE.md 000), on ALE/Pong-v5 built as NoFrameskip-v4",
            dict(env_id="ALE/Pong-v5", num_envs=32, hidden=(512,), lr=1e-4, adam_eps=1e-3, gamma=0.99,
                 entropy_beta=0.01, steps_per_update=128, returns="nstep", n_steps=10, baseline="moving",
                 baseline_window=1_000_000, grad_clip=0.1, normalize=False, stop_reward=18.0,
                 total_steps=10_000_000),
        ),
        *(Preset(
            f"dqn-{game.lower()}",
            "dqn",
            f"DQN on {game} (Nature CNN): replay 100k, Adam 1e-4, batch 32, 100k random steps first, a gradient "
            "step every 4 env steps, target overwritten every 1,000 env steps, epsilon 1 -> 0.01 over the first 10% "
            "of 10M steps, Huber, gamma 0.99, grad clip 10; replay not checkpointed (about 0.7 GB)",
            "rl-baselines3-zoo hyperparams/dqn.yml `atari` entry with Stable-Baselines3 DQN defaults (gamma 0.99, "
            "Huber, max_grad_norm 10, Adam eps 1e-8); the zoo counts target_update_interval in env steps, tfpg in "
            "gradient steps (1000 / 4 = 250). Not ported: its EpisodicLifeEnv and FireResetEnv (gymnasium's "
            "terminal_on_life_loss restarts the whole game, so it stays off and reward_100 is the game score)",
            dict(env_id=f"ALE/{game}-v5", num_envs=1, hidden=(512,), lr=1e-4, adam_eps=1e-8, gamma=0.99,
                 buffer_size=100_000, learning_starts=100_000, batch_size=32, train_freq=4, gradient_steps=1,
                 target_sync=250, tau=1.0, loss="huber", double=False, grad_clip=10.0,
                 eps_start=1.0, eps_end=0.01, eps_decay_steps=1_000_000, eps_schedule="linear",
                 log_every=10_000, checkpoint_replay=False, total_steps=10_000_000),
        ) for game in ("Pong", "Breakout")),
    ]
}

# The preset used when only --algo / --env are given.
DEFAULT_PRESETS: dict[tuple[str, str], str] = {
    ("reinforce", "CartPole-v1"): "cartpole-reinforce",
    ("dqn", "CartPole-v1"): "dqn-cartpole",
    ("reinforce", "LunarLanderContinuous-v3"): "lunarlander-pg",
    ("reinforce", "ALE/Pong-v5"): "book-pong-pg",
    ("dqn", "ALE/Pong-v5"): "dqn-pong",
    ("dqn", "ALE/Breakout-v5"): "dqn-breakout",
}
DEFAULT_ALGO = "reinforce"
DEFAULT_ENV = "CartPole-v1"


def build_config(algo: str | None, env_id: str | None, preset: str | None,
                 overrides: dict[str, Any]) -> RunConfig:
    """Resolve algo/env/preset/flags into one validated config object."""
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(_unknown("preset", preset, PRESETS) + " (list them with --list-presets)")
        p = PRESETS[preset]
        if algo is not None and algo != p.algo:
            raise ConfigError(f"preset {preset!r} is for --algo {p.algo}, not {algo}; drop one of the two flags")
        algo = p.algo
    algo = algo or DEFAULT_ALGO
    if algo not in CONFIG_CLASSES:
        raise ConfigError(_unknown("algorithm", algo, CONFIG_CLASSES))
    if preset is None:
        preset = DEFAULT_PRESETS.get((algo, env_id or DEFAULT_ENV))
    values: dict[str, Any] = {}
    if preset is not None:
        values.update(PRESETS[preset].overrides)
    if env_id is not None:
        values["env_id"] = env_id
    values.update({k: v for k, v in overrides.items() if v is not None})
    cls = CONFIG_CLASSES[algo]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"--{unknown[0].replace('_', '-')} does not apply to --algo {algo}")
    config = cls(**values)
    validate(config)
    return config


def _check_types(config: RunConfig) -> None:
    """Every field holds a value of its annotated type (values can come from flags, presets or a
    resumed run's config.json); ranges are checked afterwards."""
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        kind = str(f.type)
        if v is None and kind.endswith("| None"):
            continue
        kind = kind.replace(" | None", "")
        ok = {"int": isinstance(v, int) and not isinstance(v, bool),
              "float": isinstance(v, (int, float)) and not isinstance(v, bool),
              "bool": isinstance(v, bool),
              "str": isinstance(v, str),
              "tuple[int, ...]": isinstance(v, (tuple, list)) and all(isinstance(h, int) and not isinstance(h, bool)
                                                                      for h in v)}.get(kind, True)
        if not ok:
            what = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                    "tuple[int, ...]": "layer widths like 64,64"}[kind]
            raise ConfigError(f"--{f.name.replace('_', '-')} must be {what}, got {v!r}")


def validate(config: RunConfig) -> None:
    """Check every value's type and range; raise ConfigError naming the first bad one."""
    _check_types(config)

    def positive_int(name):
        v = getattr(config, name)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {v!r}")

    def finite(name, lo=None, hi=None, lo_open=False, allow_none=False):
        v = getattr(config, name)
        if v is None and allow_none:
            return
        flag = "--" + name.replace("_", "-")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{flag} must be a finite number, got {v!r}")
        if lo is not None and (v <= lo if lo_open else v < lo):
            raise ConfigError(f"{flag} must be {'>' if lo_open else '>='} {lo}, got {v!r}")
        if hi is not None and v > hi:
            raise ConfigError(f"{flag} must be <= {hi}, got {v!r}")

    for name in ("total_steps", "num_envs", "max_nonfinite", "eval_episodes"):
        positive_int(name)
    if not isinstance(config.checkpoint_every, int) or isinstance(config.checkpoint_every, bool) \
            or config.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be a non-negative integer, got {config.checkpoint_every!r}")
    if not isinstance(config.seed, int) or isinstance(config.seed, bool) or not 0 <= config.seed < 2**31:
        raise ConfigError(f"--seed must be an integer in [0, 2**31), got {config.seed!r}")
    finite("lr", 0.0, 1.0, lo_open=True)
    finite("stop_reward", allow_none=True)
    if not isinstance(config.eval_every, int) or isinstance(config.eval_every, bool) or config.eval_every < 0:
        raise ConfigError(f"--eval-every must be a non-negative integer (0 = no evaluation), got {config.eval_every!r}")
    positive_int("eval_episodes")
    if config.stop_on not in STOP_ON:
        raise ConfigError(_unknown("--stop-on", config.stop_on, STOP_ON))
    if config.stop_on == "eval" and config.eval_every == 0:
        raise ConfigError("--stop-on eval needs greedy evaluations; set --eval-every to a positive number of env steps, "
                          "or pass --stop-on train")
    if not isinstance(config.export_best, bool):
        raise ConfigError(f"--export-best must be true or false, got {config.export_best!r}")
    if config.export_best and not config.eval_every:
        raise ConfigError("--export-best needs evaluations to choose from: add --eval-every N")
    if not isinstance(config.terminal_on_life_loss, bool):
        raise ConfigError(f"--terminal-on-life-loss must be true or false, got {config.terminal_on_life_loss!r}")
    if config.vector_mode not in VECTOR_MODES:
        raise ConfigError(_unknown("--vector-mode", config.vector_mode, VECTOR_MODES))
    if not config.hidden or any(not isinstance(h, int) or isinstance(h, bool) or h <= 0
                                for h in config.hidden):
        raise ConfigError(f"--hidden must be one or more positive layer widths like 128 or 64,64, got {config.hidden!r}")
    if not isinstance(config.env_id, str) or not config.env_id:
        raise ConfigError("--env must be a gymnasium environment id such as CartPole-v1")
    if config.run_name is not None and (not config.run_name or "/" in config.run_name
                                        or config.run_name in (".", "..")):
        raise ConfigError(f"--run-name must be a plain folder name, got {config.run_name!r}")
    if isinstance(config, ReinforceConfig):
        finite("gamma", 0.0, 1.0)
        finite("adam_eps", 0.0, lo_open=True)
        finite("entropy_beta", 0.0)
        finite("grad_clip", 0.0)
        finite("critic_lr", 0.0, 1.0, lo_open=True)
        finite("is_clip", 0.0)
        finite("target_kl", 0.0)
        if not isinstance(config.kl_adaptive_lr, bool):
            raise ConfigError(f"--kl-adaptive-lr must be true or false, got {config.kl_adaptive_lr!r}")
        if config.kl_adaptive_lr and not config.target_kl:
            raise ConfigError("--kl-adaptive-lr steers the lr by the batch KL against --target-kl: set --target-kl, "
                              "e.g. 0.02")
        for name in ("episodes_per_update", "n_steps", "baseline_window", "critic_epochs", "reuse_epochs",
                     "minibatch_size"):
            positive_int(name)
        for name in ("steps_per_update", "grad_var_every"):
            v = getattr(config, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a non-negative integer, got {v!r}")
        finite("gae_lambda", 0.0, 1.0)
        finite("log_std_init", -5.0, 2.0)
        finite("log_std_lr", 0.0, 1.0)
        finite("std_ceiling", 0.0)
        positive_int("std_ceiling_steps")
        if config.std_ceiling and config.std_ceiling >= math.exp(config.log_std_init):
            raise ConfigError(f"--std-ceiling {config.std_ceiling} must be below the initial sigma "
                              f"exp(--log-std-init) = {math.exp(config.log_std_init):.3g}, or 0 for no ceiling")
        for name, choices in (("returns", RETURN_KINDS), ("update", UPDATE_RULES), ("baseline", BASELINE_KINDS),
                              ("policy", POLICY_KINDS), ("activation", ACTIVATIONS)):
            if getattr(config, name) not in choices:
                raise ConfigError(_unknown("--" + name, getattr(config, name), choices))
        if not config.critic_hidden or any(not isinstance(h, int) or h <= 0 for h in config.critic_hidden):
            raise ConfigError(f"--critic-hidden must be positive layer widths like 64,64, got {config.critic_hidden!r}")
        if config.returns == "lambda" and config.baseline not in ("linear", "critic"):
            raise ConfigError("--returns lambda needs a learned value function: add --baseline critic (or linear)")
        if config.returns == "nstep":
            if config.update == "episode":
                raise ConfigError("--update episode needs complete episodes; use --returns reward_to_go or total, "
                                  "or --update batch")
            if config.steps_per_update <= 0:
                raise ConfigError("--returns nstep needs --steps-per-update (transitions per batch), e.g. 8")
    if isinstance(config, DQNConfig):
        finite("gamma", 0.0, 1.0)
        finite("adam_eps", 0.0, lo_open=True)
        finite("grad_clip", 0.0)
        finite("tau", 0.0, 1.0, lo_open=True)
        for name in ("buffer_size", "batch_size", "train_freq", "gradient_steps", "target_sync",
                     "eps_decay_steps", "log_every"):
            positive_int(name)
        if not isinstance(config.learning_starts, int) or isinstance(config.learning_starts, bool) \
                or config.learning_starts < 0:
            raise ConfigError(f"--learning-starts must be a non-negative integer, got {config.learning_starts!r}")
        if config.buffer_size < config.num_envs:
            raise ConfigError(f"--buffer-size ({config.buffer_size}) must hold at least one vector step "
                              f"(--num-envs {config.num_envs})")
        if config.loss not in LOSS_KINDS:
            raise ConfigError(_unknown("--loss", config.loss, LOSS_KINDS))
        if not isinstance(config.double, bool):
            raise ConfigError(f"--double must be true or false, got {config.double!r}")
        if not isinstance(config.checkpoint_replay, bool):
            raise ConfigError(f"--checkpoint-replay must be true or false, got {config.checkpoint_replay!r}")
        finite("eps_start", 0.0, 1.0)
        finite("eps_end", 0.0, 1.0)
        if config.eps_schedule not in EPS_SCHEDULES:
            raise ConfigError(_unknown("--eps-schedule", config.eps_schedule, EPS_SCHEDULES))
        if config.eps_schedule == "exponential" and min(config.eps_start, config.eps_end) <= 0:
            raise ConfigError("--eps-schedule exponential needs --eps-start and --eps-end > 0 "
                              "(a geometric decay never reaches 0); use linear or a small positive --eps-end")


def _unknown(what: str, value: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(str(value), list(choices), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; choose from {', '.join(choices)}"
    return f"unknown {what} {value!r}{hint}"
