"""PPO's presets: each holds its source and only what differs from PPO's defaults."""
from __future__ import annotations

from tfpg.config.run import Preset

ZOO = "rl-baselines3-zoo hyperparams/ppo.yml entry {env} (rl-zoo3 2.x) with Stable-Baselines3 PPO defaults"

PRESETS = (
    Preset("ppo-cartpole", "ppo",
           "PPO on CartPole-v1: 8 envs x 32 steps, one minibatch of 256, 20 epochs, GAE(0.8), gamma 0.98, lr and "
           "clip range linear from 1e-3 and 0.2",
           ZOO.format(env="CartPole-v1") + " (64-64 tanh, max_grad_norm 0.5, standardised advantages); deviation: "
           "two Adams, policy and critic, each clipped on its own (SB3: one on policy + 0.5 x value loss)",
           dict(horizon=32, minibatch_size=256, epochs=20, gae_lambda=0.8, gamma=0.98, lr=1e-3, critic_lr=1e-3,
                linear_lr=True, target_kl=0.0, linear_clip=True, normalize_obs=False, normalize_reward=False,
                critic_activation="tanh", stop_reward=475.0, total_steps=100_000),
           default=True),
    Preset("ppo-lunarlander-continuous", "ppo",
           "PPO on LunarLanderContinuous-v3: 16 envs x 1024 steps, minibatches of 64, 4 epochs, GAE(0.98), gamma "
           "0.999, entropy 0.01, lr 3e-4",
           ZOO.format(env="LunarLanderContinuous-v3") + " (64-64 tanh, clip 0.2, max_grad_norm 0.5, standardised "
           "advantages); deviations: observation normalisation added (the zoo entry has none), a ReLU critic (SB3's "
           "is tanh)",
           dict(env_id="LunarLanderContinuous-v3", num_envs=16, vector_mode="sync", horizon=1024, epochs=4,
                gae_lambda=0.98, gamma=0.999, entropy_beta=0.01, target_kl=0.0, normalize_reward=False,
                total_steps=1_000_000, eval_every=100_000),
           default=True),
)
