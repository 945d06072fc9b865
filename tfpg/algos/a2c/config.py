"""The options of A2C: its config dataclass, each field declared once with `tfpg.config.options.option`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from tfpg.algos.actor_critic import ActorCriticConfig
from tfpg.config.options import flag_name, option
from tfpg.core.errors import ConfigError


@dataclass
class A2CConfig(ActorCriticConfig):
    """A2C: one gradient step per fixed-horizon batch (see the module docstring)."""

    algo: str = "a2c"
    horizon: int = 8
    lr: float = 7e-4
    adam_eps: float = 1e-5   # Stable-Baselines3's (its RMSprop's)
    critic_lr: float = 7e-4
    # why tanh (SB3's too): a ReLU critic did not fit; docs/journal/2026-12-06-a2c-critic-and-advantages.md
    critic_activation: str = "tanh"
    # why raw (SB3's too): scaled rewards give O(1) advantages; docs/journal/2026-12-06-a2c-critic-and-advantages.md
    normalize: bool = False
    shared_torso: bool = option(False, "one network body for the policy and value heads, trained as "
                                       "--joint-update does; --critic-hidden, --critic-lr and --critic-activation "
                                       "are then unused")
    joint_update: bool = option(False, "one optimizer step (--lr) over the policy and critic networks together on "
                                       "policy + --vf-coef x value loss, one gradient-norm clip over both (Stable-"
                                       "Baselines3's A2C); false: each network its own optimizer (--lr, --critic-lr)."
                                       " Always on with --shared-torso true")
    vf_coef: float = option(0.5, "weight of the value loss in the joint loss of --joint-update or --shared-torso",
                            low=0.0)
    optimizer: str = option("adam", "adam, or rmsprop (PyTorch's, as Stable-Baselines3's A2C: decay 0.99, "
                                    "--adam-eps added to the root)", choices=("adam", "rmsprop"))
    linear_lr: bool = option(False, "decay --lr (and --critic-lr) linearly to 0 over --total-steps")
    # why on: it bounds the rare large single update; docs/journal/2026-12-06-a2c-kl-adaptive-lr.md
    kl_adaptive_lr: bool = True
    target_kl: float = 0.0005

    unused: ClassVar[tuple[str, ...]] = ("critic_epochs", "minibatch_size")

    @classmethod
    def group_title(cls) -> str:
        return "a2c"

    def check_given(self, given: frozenset[str]) -> None:
        super().check_given(given)
        if "target_kl" in given and self.target_kl and not self.kl_adaptive_lr:
            raise ConfigError("--target-kl is the KL that --kl-adaptive-lr steers A2C's lr by: drop --target-kl, or "
                              "set --kl-adaptive-lr true")
        critic_flags = [flag_name(name) for name in ("critic_hidden", "critic_lr", "critic_activation") if name in given]
        if critic_flags and self.shared_torso:
            raise ConfigError(f"{critic_flags[0]} shapes the separate critic, but with --shared-torso true the value "
                              f"head sits on the policy network, trained by one optimizer at --lr: drop "
                              f"{critic_flags[0]}, or set --shared-torso false")
        if "joint_update" in given and self.shared_torso and not self.joint_update:
            raise ConfigError("--joint-update false needs two networks, but --shared-torso true trains one body with "
                              "two heads by one optimizer: drop --joint-update, or set --shared-torso false")
        if "critic_lr" in given and self.joint_update:
            raise ConfigError("--critic-lr is the critic's own optimizer's, but with --joint-update true one optimizer "
                              "at --lr trains both networks: drop --critic-lr, or set --joint-update false")
        if "vf_coef" in given and not self.joint:
            raise ConfigError("--vf-coef weights the value loss in the joint loss of --joint-update true; the separate "
                              "critic has its own optimizer (--critic-lr): drop --vf-coef, or set --joint-update true")

    @property
    def joint(self) -> bool:
        """One optimizer step on the joint loss (--joint-update, or forced by --shared-torso)."""
        return self.joint_update or self.shared_torso
