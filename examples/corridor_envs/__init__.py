"""A package of your own that registers its envs with gymnasium when it is imported, as minigrid or ale_py do.

    python train.py --algo ppo --env-module corridor_envs --env Corridor-v0      (examples/ on PYTHONPATH)
    python train.py --algo ppo --env corridor_envs:Corridor-v0                  (the same)
    tfpg.PPO("corridor_envs:Corridor-v0")
"""
import gymnasium as gym

if "Corridor-v0" not in gym.registry:
    gym.register("Corridor-v0", entry_point="corridor_envs.corridor:Corridor", max_episode_steps=30)
