"""The options of DQN: its config dataclass, each field declared once with `tfpg.config.options.option`."""
from __future__ import annotations

from dataclasses import dataclass

from tfpg.config.options import option
from tfpg.config.run import LearnerConfig
from tfpg.core.errors import ConfigError


@dataclass
class DQNConfig(LearnerConfig):
    """DQN (Mnih et al. 2015): Q-learning with experience replay and a target network (module docstring)."""

    algo: str = "dqn"
    # The fallback defaults (no preset for the env): the rl-baselines3-zoo's shared setting for small-state
    # classic-control / Box2D envs (hyperparams/dqn.yml: Acrobot-v1, LunarLander-v3) with Stable-Baselines3's DQN
    # defaults (Huber, max_grad_norm 10, Adam eps 1e-8); the target is overwritten every 250 env steps, which is
    # every 250 gradient steps here.
    num_envs: int = 1
    hidden: tuple[int, ...] = (256, 256)
    lr: float = 6.3e-4
    adam_eps: float = 1e-8
    grad_clip: float = 10.0
    buffer_size: int = option(50_000, "replay capacity in transitions, FIFO", low=1)
    learning_starts: int = option(1_000, "env steps of uniformly random actions before the first update", low=0)
    batch_size: int = option(128, "transitions per gradient step", low=1)
    train_freq: int = option(4, "vector env steps between updates", low=1)
    gradient_steps: int = option(4, "gradient steps per update", low=1)
    target_sync: int = option(250, "applied gradient steps between target-network updates", low=1)
    tau: float = option(1.0, "target <- tau*online + (1-tau)*target at each sync; 1 = overwrite", low=0.0,
                        low_open=True, high=1.0)
    loss: str = option("huber", "TD loss: mse, or huber (quadratic within 1, linear outside)", choices=("mse", "huber"))
    # why on (the presets pin their sources' plain target): it found more flags; docs/journal/2026-12-06-dqn-double-target.md
    double: bool = option(True, "Double DQN target: the online net picks a', the target net values it")
    eps_start: float = option(1.0, "initial exploration rate", low=0.0, high=1.0)
    eps_end: float = option(0.1, "final exploration rate", low=0.0, high=1.0)
    eps_decay_steps: int = option(12_000, "env steps from --eps-start to --eps-end", low=1)
    eps_schedule: str = option("linear", "linear or exponential (geometric) decay", choices=("linear", "exponential"))
    worker_eps: float = option(0.0, "with --workers N, after the warm-up worker i explores with its own fixed "
                                    "epsilon_i = e^(1 + --worker-eps-alpha * i / (N - 1)), e = this value (Ape-X's "
                                    "per-actor epsilons), instead of the run's schedule; 0 = the schedule",
                               low=0.0, high=1.0)
    worker_eps_alpha: float = option(7.0, "alpha of --worker-eps: the last worker's epsilon is e^(1 + alpha)", low=0.0)
    log_every: int = option(1_000, "env steps between logged diagnostics", low=1)
    checkpoint_replay: bool = option(True, "store the replay buffer in checkpoints: exact resume, at the cost of the "
                                           "buffer's size on disk per checkpoint; without it a resumed run refills "
                                           "--learning-starts steps with the current epsilon-greedy policy")

    @classmethod
    def group_title(cls) -> str:
        return "dqn"

    def check(self) -> None:
        super().check()
        if self.buffer_size < self.num_envs:
            raise ConfigError(f"--buffer-size ({self.buffer_size}) must hold at least one vector step "
                              f"(--num-envs {self.num_envs})")
        if self.worker_eps and not self.workers:
            raise ConfigError("--worker-eps sets the epsilon of each Ray rollout worker: add --workers N, or use the "
                              "--eps-* schedule")
        if self.worker_eps_alpha != type(self).worker_eps_alpha and not self.worker_eps:
            raise ConfigError("--worker-eps-alpha shapes the per-worker epsilons of --worker-eps: add --worker-eps E")
        if self.eps_schedule == "exponential" and min(self.eps_start, self.eps_end) <= 0:
            raise ConfigError("--eps-schedule exponential needs --eps-start and --eps-end > 0 (a geometric decay "
                              "never reaches 0); use linear or a small positive --eps-end")
