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
    # Stable-Baselines3's too. A2C's critic takes one Adam step per small batch; a ReLU one on the normalised
    # observations never explained the returns of Acrobot-v1 or MountainCar-v0 (explained variance < 0 over
    # 200k-1M steps, the policy never reached the goal), a tanh one did within 35k and 300k. PPO and TRPO
    # learned every env tried with the ReLU critic (and PPO found MountainCarContinuous's goal on 3 of 3 seeds
    # with it, 2 of 3 with tanh), so they keep it.
    critic_activation: str = "tanh"
    # Stable-Baselines3's A2C default too. Standardising each 64-transition batch gives every step unit-scale
    # advantages even when they are all noise; with rewards already scaled (--normalize-reward) the raw
    # advantages are O(1). Without a preset, seed 0: standardised, A2C learned 2 of Acrobot-v1, MountainCar-v0,
    # MountainCarContinuous-v0, Pendulum-v1, LunarLander-v3 in the zoo's budgets; raw, all 5 (README).
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
    # One Adam step per 64 transitions moves the policy by a KL of ~2e-4 (the median while learning LunarLander-v3
    # and BipedalWalker-v3), but single updates reached 0.01-0.06 on BipedalWalker-v3 once it walked, and it lost
    # the walk (greedy -104 after 5M, seed 0). Steering the lr by each update's exact KL against 5e-4 kept it (and
    # leaves --lr as it is while no update passes 1e-3); it costs LunarLander-v3 speed (README, "Why A2C's lr
    # follows the KL by default").
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
