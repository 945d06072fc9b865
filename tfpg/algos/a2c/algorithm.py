"""A2C: synchronous advantage actor-critic (Mnih et al. 2016, the synchronous variant), the book's next
step after vanilla PG.

Each iteration collects T vector steps of N envs (`tfpg.algos.actor_critic`: GAE(lambda) advantages A_t and
critic targets G_t = A_t + V_old(s_t)) and takes one gradient step on the whole batch of M transitions:

    loss_policy  = -1/M sum_t A_t log pi_theta(a_t|s_t)
    loss_entropy = -beta 1/M sum_t H(pi_theta(.|s_t))
    value_loss   = 1/M sum_t (V_phi(s_t) - G_t)^2

With separate networks, theta follows loss_policy + loss_entropy (Adam, --lr) and phi follows
value_loss (Adam, --critic-lr). With --joint-update (Stable-Baselines3's A2C), one optimizer step (--lr) over
theta and phi together follows loss_policy + loss_entropy + c_v value_loss, c_v = --vf-coef, its gradient
clipped as one vector (--grad-clip), so a batch the critic mispredicts badly moves the policy less; with
--shared-torso one network body carries both heads, trained that way. --optimizer rmsprop takes PyTorch's
RMSprop (`tfpg.algos.actor_critic.built_optimizer`) in place of Adam.
lambda = 1 gives the n-step returns of the original A2C (each step's return bootstrapped from
V at the end of the rollout), lambda < 1 GAE. Without a preset the advantages are used as they come
(--normalize false, as in Stable-Baselines3's A2C; the rewards are scaled by --normalize-reward) and the
critic is a tanh MLP (--critic-activation), and the policy's lr follows each update's exact KL on its batch,
KL_t = 1/M sum_t KL(pi_old(.|s_t) || pi_theta(.|s_t)) (--kl-adaptive-lr, `tfpg.maths.schedules.adapt_learning_rate`):
lr / 1.5 when KL_t > 2 --target-kl, x 1.5 up to --lr (or its linear schedule) when KL_t < --target-kl / 2
(with --joint-update that lr is the one optimizer's, so the critic's steps follow it too).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import tensorflow as tf

from tfpg.algos.actor_critic import ActorCritic, ActorCriticConfig, apply_if_finite, built_optimizer, unique_variables
from tfpg.algos.actor_critic_base import ActorCriticAlgorithm
from tfpg.algos.base import Iteration
from tfpg.config.run import Preset
from tfpg.core.errors import ConfigError
from tfpg.maths.losses import entropy_loss, value_estimation_loss
from tfpg.config.options import flag_name, option
from tfpg.maths.schedules import adapt_learning_rate, constant_or_linear


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


ZOO = "rl-baselines3-zoo hyperparams/a2c.yml entry {env} (rl-zoo3 2.x) with Stable-Baselines3 A2C defaults"

PRESETS = (
    Preset("a2c-cartpole", "a2c",
           "A2C on CartPole-v1: 8 envs x 5 steps, lambda 1 (n-step returns), one RMSprop step at 7e-4 on policy + "
           "0.5 x value loss, grad clip 0.5, no advantage standardisation",
           ZOO.format(env="CartPole-v1") + " (n_steps 5, gae_lambda 1, lr 7e-4, vf_coef 0.5, max_grad_norm 0.5, "
           "normalize_advantage false, RMSprop alpha 0.99 eps 1e-5, separate 64-64 tanh policy and value networks); "
           "deviation: Glorot-uniform initialisation (SB3's is orthogonal)",
           dict(env_id="CartPole-v1", num_envs=8, horizon=5, gamma=0.99, gae_lambda=1.0, lr=7e-4, joint_update=True,
                vf_coef=0.5, optimizer="rmsprop", adam_eps=1e-5,
                normalize=False, normalize_obs=False, normalize_reward=False, critic_activation="tanh",
                entropy_beta=0.0, grad_clip=0.5, kl_adaptive_lr=False, target_kl=0.0,
                hidden=(64, 64), critic_hidden=(64, 64), activation="tanh", stop_reward=475.0, total_steps=500_000),
           default=True),
    Preset("a2c-lunarlander-continuous", "a2c",
           "A2C on LunarLanderContinuous-v3: 4 envs x 8 steps, GAE(0.9), linear lr from 7e-4, sigma from exp(-2), "
           "observation normalisation; a state-independent Gaussian instead of the zoo's gSDE, Adam instead of "
           "RMSprop, no reward normalisation",
           ZOO.format(env="LunarLanderContinuous-v3") + " (n_envs 4, n_steps 8, gae_lambda 0.9, gamma 0.99, "
           "lin_7e-4, log_std_init -2, max_grad_norm 0.5, normalize_advantage false, 5M steps); deviations: no "
           "gSDE, Adam, observation normalisation only, a ReLU critic (SB3's is tanh)",
           dict(env_id="LunarLanderContinuous-v3", num_envs=4, vector_mode="sync", horizon=8, gamma=0.99,
                gae_lambda=0.9, lr=7e-4, critic_lr=7e-4, linear_lr=True, normalize=False, normalize_obs=True,
                normalize_reward=False, critic_activation="relu",
                log_std_init=-2.0, entropy_beta=0.0, grad_clip=0.5, kl_adaptive_lr=False, target_kl=0.0, hidden=(64, 64),
                critic_hidden=(64, 64), activation="tanh", stop_reward=200.0, total_steps=5_000_000, eval_every=100_000),
           default=True),
)


def make_a2c_update(core: ActorCritic, optimizer, critic_optimizer, config: A2CConfig):
    """One compiled gradient step on a batch: (observations, actions, advantages, returns) -> metrics."""
    policy = core.policy
    policy_variables = unique_variables(policy.variables)
    critic_variables = core.critic_variables
    joint_variables = unique_variables(policy.variables, critic_variables)
    scalar = tf.TensorSpec([None], tf.float32)

    @tf.function(input_signature=[policy.obs_spec, policy.action_spec, scalar, scalar])
    def update(observations, actions, advantages, returns):
        with tf.GradientTape(persistent=True) as tape:
            distribution = policy.distribution(observations)
            loss_policy = -tf.reduce_mean(advantages * distribution.log_prob(actions))
            loss_entropy = config.entropy_beta * entropy_loss(distribution.entropy())
            value_loss = value_estimation_loss(core.value(observations), returns)
            actor_loss = loss_policy + loss_entropy
            joint_loss = actor_loss + config.vf_coef * value_loss
        if config.joint:
            finite = apply_if_finite(optimizer, joint_loss, tape.gradient(joint_loss, joint_variables),
                                     joint_variables, config.grad_clip)
        else:
            actor_ok = apply_if_finite(optimizer, actor_loss, tape.gradient(actor_loss, policy_variables),
                                       policy_variables, config.grad_clip)
            critic_ok = apply_if_finite(critic_optimizer, value_loss, tape.gradient(value_loss, critic_variables),
                                        critic_variables, config.grad_clip)
            finite = tf.logical_and(actor_ok, critic_ok)
        return {"loss_policy": loss_policy, "loss_entropy": loss_entropy, "value_loss": value_loss,
                "finite": finite}

    return update.get_concrete_function()


class A2C(ActorCriticAlgorithm):
    """Collect T x N steps, compute GAE, one compiled actor-critic gradient step."""

    name = "a2c"
    config_class = A2CConfig
    loss_metric = "loss_policy"
    presets = PRESETS

    def __init__(self, config: A2CConfig, spaces, stepper):
        self._build_core(config, spaces, stepper, shared_torso=config.shared_torso)
        critic_variables = self.core.critic_variables
        # a joint update: one optimizer over policy and critic together, the critic's own stays unused
        self.optimizer = built_optimizer(config.lr, config.adam_eps, unique_variables(self.policy.variables, critic_variables)
                                         if config.joint else self.policy.variables, config.optimizer)
        self.critic_optimizer = built_optimizer(config.critic_lr, config.adam_eps,
                                                None if config.joint else critic_variables, config.optimizer)
        self.update = make_a2c_update(self.core, self.optimizer, self.critic_optimizer, config)
        self.lr = constant_or_linear(config.lr, config.linear_lr, config.total_steps)
        self.critic_lr = constant_or_linear(config.critic_lr, config.linear_lr, config.total_steps)

    def trackables(self) -> dict:
        return {**self.core.trackables(), "optimizer": self.optimizer, "critic_optimizer": self.critic_optimizer}

    def iteration(self) -> Iteration:
        batch = self.core.collect()
        steps = self.stepper.env_steps
        lr = self.lr(steps)
        if self.config.kl_adaptive_lr:   # the lr follows the KL, capped by the schedule at this update's step
            lr = min(float(self.optimizer.learning_rate.numpy()), lr)
        self.optimizer.learning_rate.assign(lr)
        self.critic_optimizer.learning_rate.assign(self.critic_lr(steps))
        metrics = {k: v.numpy() for k, v in self.update(batch.observations, batch.actions, batch.advantages,
                                                        batch.returns).items()}
        finite = bool(metrics.pop("finite"))
        metrics = {k: float(v) for k, v in metrics.items()}
        metrics.update(self.batch_diagnostics(batch))
        metrics["lr"] = float(self.optimizer.learning_rate.numpy())
        if self.config.kl_adaptive_lr:   # the lr of the next update, from this one's KL
            adapt_learning_rate(self.optimizer, metrics["kl"], self.config.target_kl, self.lr(steps))
        return Iteration(metrics, finite=[finite])

