"""TRPO / NPG's presets: each holds its source and only what differs from TRPO / NPG's defaults."""
from __future__ import annotations

from tfpg.config.run import Preset

ZOO = "rl-baselines3-zoo hyperparams/trpo.yml entry {env} (rl-zoo3 2.x) with sb3-contrib TRPO defaults"

PRESETS = (
    Preset("trpo-cartpole", "trpo",
           "TRPO on CartPole-v1: 2 envs x 512 steps, delta 0.01, CG damping 1e-3, GAE(0.98), critic 20 passes of "
           "minibatches of 512 at Adam 1e-3",
           ZOO.format(env="CartPole-v1") + " (cg_max_steps 15, line search 10 x 0.8, 64-64 tanh, standardised "
           "advantages); deviation: a ReLU critic (sb3-contrib's is tanh)",
           dict(num_envs=2, horizon=512, minibatch_size=512, cg_damping=1e-3, gae_lambda=0.98, critic_epochs=20,
                normalize_obs=False, normalize_reward=False, stop_reward=475.0, total_steps=100_000), default=True),
    Preset("trpo-lunarlander-continuous", "trpo",
           "TRPO on LunarLanderContinuous-v3: 8 envs x 512 steps (batches of 4,096), observation and reward "
           "normalisation, delta 0.01, critic 20 passes of minibatches of 128; 500k steps",
           "tfpg's own tuning (docs/journal/2026-12-06-trpo-lander-preset.md), from the rl-baselines3-zoo hyperparams/trpo.yml "
           "entry LunarLanderContinuous-v3 (rl-zoo3 2.x: delta 0.01, damping 0.1, GAE(0.95), gamma 0.99, VecNormalize "
           "of observations and rewards, 20 critic updates) with sb3-contrib TRPO defaults; changed: 8 envs x 512 "
           "steps instead of 2 x 1024 (greedy 271, 269, 265, 241 after 500k on seeds 0-3; the zoo's shape gave 254, "
           "143, 179), 500k steps instead of 100k, a ReLU critic (sb3-contrib's is tanh)",
           dict(env_id="LunarLanderContinuous-v3", vector_mode="sync", horizon=512, critic_epochs=20,
                eval_every=50_000), default=True),
)
