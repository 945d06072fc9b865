"""The options of REINFORCE: its config dataclass, each field declared once with `tfpg.config.options.option`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfpg.config.options import option
from tfpg.config.run import PolicyGradientConfig
from tfpg.core.errors import ConfigError
from tfpg.models.baselines import BASELINE_KINDS


@dataclass
class ReinforceConfig(PolicyGradientConfig):
    """The policy-gradient family: REINFORCE and the book's vanilla N-step PG (see the module docstring)."""

    algo: str = "reinforce"
    # The fallback defaults (an env without a preset) are the robust settings, not the book's naive ones, which
    # are `--preset book-cartpole-reinforce`.
    hidden: tuple[int, ...] = (64, 64)
    lr: float = 1e-3
    activation: str = "tanh"
    normalize_obs: bool = True
    # why 80: a critic that fits makes GAE's advantages informative; docs/journal/2026-12-06-reinforce-fallback-critic-and-lr.md
    critic_epochs: int = 80
    normalize: bool = True
    target_kl: float = 0.02
    # why on: --target-kl cannot bound a batch's first epoch; docs/journal/2026-12-06-reinforce-fallback-critic-and-lr.md
    kl_adaptive_lr: bool = True
    log_std_lr: float = option(0.0, "Adam learning rate of the Gaussian log-std, a separate optimizer; 0 = the "
                                    "policy's optimizer and --lr", low=0.0, high=1.0)
    std_ceiling: float = option(0.0, "Gaussian policy: cap sigma by a ceiling falling log-linearly from "
                                     "exp(--log-std-init) to this value over --std-ceiling-steps env steps (the "
                                     "log-std stays trainable below it); 0 = no ceiling", low=0.0)
    std_ceiling_steps: int = option(500_000, "env steps over which the --std-ceiling falls", low=1)
    returns: str = option("lambda", "reward_to_go: G_t from step t on; total: G_0 for every step (CS285); "
                                          "nstep: the next --n-steps discounted rewards, no complete episodes needed; "
                                          "lambda: TD(lambda) returns from the learned baseline (GAE advantages)",
                          choices=("reward_to_go", "total", "nstep", "lambda"))
    n_steps: int = option(10, "window of --returns nstep (the book's REWARD_STEPS)", low=1)
    update: str = option("minibatch", "batch: one step on the mean over all steps (1/sum T_i); episode: one step per "
                                  "episode (1/T); step: one step per transition; minibatch: one step per shuffled "
                                  "minibatch of --minibatch-size steps", choices=("batch", "episode", "step", "minibatch"))
    episodes_per_update: int = option(1, "complete episodes in each update batch", low=1)
    steps_per_update: int = option(2048, "collect at least this many steps of complete episodes per update; with "
                                      "--returns nstep, the transitions per batch", low=0)
    baseline: str = option("critic", "b(s) subtracted from returns: none, mean (of all returns seen), moving (mean of "
                                   "the last --baseline-window), linear (scikit-learn LinearRegression on states), "
                                   "critic (Keras value network)", choices=BASELINE_KINDS)
    baseline_window: int = option(1_000_000, "transitions in the moving baseline", low=1)
    critic_normalize: bool = option(True, "fit the critic on standardised returns (running mean/std of its targets) "
                                           "and scale its output back, so the reward's scale does not slow it down")
    reuse_epochs: int = option(10, "gradient steps per batch; > 1 weights each term by pi/pi_old (importance "
                                  "sampling)", low=1)
    is_clip: float = option(2.0, "truncate importance ratios at this value; 0 = off", low=0.0)
    grad_var_every: int = option(0, "log grad_var, the variance of per-episode gradient estimates, every N updates; "
                                    "0 = off", low=0)

    @classmethod
    def group_title(cls) -> str:
        return "reinforce (policy gradient)"

    def check(self) -> None:
        super().check()
        if self.std_ceiling and self.std_ceiling >= float(np.exp(self.log_std_init)):
            raise ConfigError(f"--std-ceiling {self.std_ceiling} must be below the initial sigma exp(--log-std-init) "
                              f"= {np.exp(self.log_std_init):.3g}, or 0 for no ceiling")
        if self.returns == "lambda" and self.baseline not in ("linear", "critic"):
            raise ConfigError("--returns lambda needs a learned value function: add --baseline critic (or linear)")
        if self.returns == "nstep" and self.update == "episode":
            raise ConfigError("--update episode needs complete episodes; use --returns reward_to_go or total, "
                              "or --update batch")
        if self.returns == "nstep" and self.normalize_reward:
            raise ConfigError("--normalize-reward scales the rewards of complete episodes; with --returns nstep use "
                              "--normalize-reward false")
        if self.returns == "nstep" and self.steps_per_update <= 0:
            raise ConfigError("--returns nstep needs --steps-per-update (transitions per batch), e.g. 8")
