"""A2C's presets: each holds its source and only what differs from A2C's defaults."""
from __future__ import annotations

from tfpg.config.run import Preset

ZOO = "rl-baselines3-zoo hyperparams/a2c.yml entry {env} (rl-zoo3 2.x) with Stable-Baselines3 A2C defaults"

PRESETS = (
    Preset("a2c-cartpole", "a2c",
           "A2C on CartPole-v1: 8 envs x 5 steps, lambda 1 (n-step returns), one RMSprop step at 7e-4 on policy + "
           "0.5 x value loss, grad clip 0.5, no advantage standardisation",
           ZOO.format(env="CartPole-v1") + " (n_steps 5, gae_lambda 1, lr 7e-4, vf_coef 0.5, max_grad_norm 0.5, "
           "normalize_advantage false, RMSprop alpha 0.99 eps 1e-5, separate 64-64 tanh policy and value networks); "
           "deviation: Glorot-uniform initialisation (SB3's is orthogonal)",
           dict(horizon=5, gae_lambda=1.0, joint_update=True, optimizer="rmsprop", normalize_obs=False,
                normalize_reward=False, kl_adaptive_lr=False, target_kl=0.0, stop_reward=475.0),
           default=True),
    Preset("a2c-lunarlander-continuous", "a2c",
           "A2C on LunarLanderContinuous-v3: 4 envs x 8 steps, GAE(0.9), linear lr from 7e-4, sigma from exp(-2), "
           "observation normalisation; a state-independent Gaussian instead of the zoo's gSDE, Adam instead of "
           "RMSprop, no reward normalisation",
           ZOO.format(env="LunarLanderContinuous-v3") + " (n_envs 4, n_steps 8, gae_lambda 0.9, gamma 0.99, "
           "lin_7e-4, log_std_init -2, max_grad_norm 0.5, normalize_advantage false, 5M steps); deviations: no "
           "gSDE, Adam, observation normalisation only, a ReLU critic (SB3's is tanh)",
           dict(env_id="LunarLanderContinuous-v3", num_envs=4, vector_mode="sync", gae_lambda=0.9, linear_lr=True,
                normalize_reward=False, critic_activation="relu", log_std_init=-2.0, kl_adaptive_lr=False,
                target_kl=0.0, stop_reward=200.0, total_steps=5_000_000, eval_every=100_000),
           default=True),
)
