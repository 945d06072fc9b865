"""The options of PPO: its config dataclass, each field declared once with `tfpg.config.options.option`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from tfpg.algos.actor_critic import ActorCriticConfig
from tfpg.config.options import option


@dataclass
class PPOConfig(ActorCriticConfig):
    """PPO-clip: epochs of shuffled minibatch steps on each fixed-horizon batch (see the module docstring)."""

    algo: str = "ppo"
    minibatch_size: int = 64
    # why on: as sigma shrinks, 10 epochs move the policy ever further; docs/journal/2026-12-06-ppo-kl-stop.md
    target_kl: float = 0.02
    adam_eps: float = 1e-5   # Stable-Baselines3's
    epochs: int = option(10, "passes over each batch, each in shuffled minibatches of --minibatch-size (one, if "
                                 "the batch is smaller)", low=1)
    clip_range: float = option(0.2, "eps of the clipped ratio clip(r, 1 - eps, 1 + eps)", low=0.0, low_open=True,
                               high=1.0)
    clip_range_vf: float = option(0.0, "keep V within this of the batch's old values unless moving further lowers "
                                       "the error (clipped value loss); 0 = off", low=0.0)
    linear_lr: bool = option(False, "decay --lr (and --critic-lr) linearly to 0 over --total-steps")
    linear_clip: bool = option(False, "decay --clip-range linearly to 0 over --total-steps")
    critic_lr: float = 3e-4

    unused: ClassVar[tuple[str, ...]] = ("critic_epochs", "kl_adaptive_lr")

    @classmethod
    def group_title(cls) -> str:
        return "ppo"
