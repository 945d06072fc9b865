"""The options of TRPO / NPG: its config dataclass, each field declared once with `tfpg.config.options.option`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from tfpg.algos.actor_critic import ActorCriticConfig
from tfpg.config.options import option


@dataclass
class TRPOConfig(ActorCriticConfig):
    """TRPO: natural step + backtracking line search on the KL trust region (see the module docstring)."""

    algo: str = "trpo"
    minibatch_size: int = 128
    critic_epochs: int = 10
    critic_lr: float = 1e-3
    grad_clip: float = 0.0
    max_kl: float = option(0.01, "delta: the trust region, mean KL(pi_old || pi_new) over the batch", low=0.0,
                           low_open=True)
    cg_iterations: int = option(15, "conjugate-gradient iterations for x ~= (F + damping I)^-1 g", low=1)
    cg_damping: float = option(0.1, "damping lambda added to the Fisher matrix", low=0.0)
    line_search: bool = option(True, "backtracking line search on the surrogate and the measured KL; false: the "
                                     "natural step as it is (the natural policy gradient, --algo npg)")
    backtracks: int = option(10, "line-search tries (fractions 1, r, r^2, ... of the natural step)", low=1)
    backtrack_ratio: float = option(0.8, "r, the line search's shrink factor", low=0.0, low_open=True, high=1.0)

    # The policy moves by the natural step, not by Adam: --lr and the Adam-step options are not used.
    unused: ClassVar[tuple[str, ...]] = ("lr", "target_kl", "entropy_beta", "kl_adaptive_lr")

    @classmethod
    def group_title(cls) -> str:
        return "trpo / npg"


@dataclass
class NPGConfig(TRPOConfig):
    """The natural policy gradient: TRPO's step without the line search."""

    algo: str = "npg"
    line_search: bool = False
