"""DQN's presets: each holds its source and only what differs from DQN's defaults."""
from __future__ import annotations

from tfpg.config.run import Preset

ZOO = ("rl-baselines3-zoo hyperparams/dqn.yml `atari` entry with Stable-Baselines3 DQN defaults (gamma 0.99, Huber, "
       "max_grad_norm 10, Adam eps 1e-8); the zoo counts target_update_interval in env steps, tfpg in gradient steps "
       "(1000 / 4 = 250). Not ported: its EpisodicLifeEnv and FireResetEnv (gymnasium's terminal_on_life_loss "
       "restarts the whole game, so it stays off and reward_100 is the game score)")

PRESETS = (
    # Few large updates, as in Stable-Baselines3's zoo: 128 gradient steps (one compiled call) every 256 env
    # steps, the target overwritten once per update (why the 256-256 network: docs/results/cartpole.md).
    Preset("dqn-cartpole", "dqn", "DQN on CartPole-v1 tuned for wall-clock speed to a greedy evaluation mean >= 475",
           "tfpg's own tuning (benchmarks/cartpole_dqn.py, docs/results/cartpole.md)",
           dict(num_envs=4, lr=2.3e-3, batch_size=64, train_freq=64, gradient_steps=128, target_sync=128,
                double=False, eps_end=0.04, eps_decay_steps=8_000, eval_every=2_500, stop_on="eval",
                stop_reward=475.0, total_steps=100_000, adam_eps=1e-07), default=True),
    Preset("hwang-dqn-cartpole", "dqn",
           "the DQN post's CartPole setup: replay 50,000, random warm-up, target overwritten every 10 updates, "
           "gamma 0.99, MSE loss, decaying epsilon",
           "H. Hwang, blog post \"Reinforcement Learning_[5]\" (DQN on CartPole, PyTorch); values the post leaves "
           "open (network, batch, lr, warm-up length, epsilon schedule) are tfpg's choices",
           dict(hidden=(64, 64), lr=1e-3, batch_size=64, train_freq=1, gradient_steps=1, target_sync=10, loss="mse",
                double=False, grad_clip=0.0, eps_end=0.05, eps_decay_steps=10_000, stop_reward=475.0,
                total_steps=200_000, adam_eps=1e-07),
           replaces=("seed001-dqn-cartpole",)),
    *(Preset(f"zoo-dqn-{game.lower()}", "dqn",
             f"DQN on {game} (Nature CNN): replay 100k, Adam 1e-4, batch 32, 100k random steps first, a gradient "
             "step every 4 env steps, target overwritten every 1,000 env steps, epsilon 1 -> 0.01 over the first 10% "
             "of 10M steps, Huber, gamma 0.99, grad clip 10; replay not checkpointed (about 0.7 GB)", ZOO,
             dict(env_id=f"ALE/{game}-v5", hidden=(512,), lr=1e-4, buffer_size=100_000, learning_starts=100_000,
                  batch_size=32, gradient_steps=1, double=False, eps_end=0.01, eps_decay_steps=1_000_000,
                  log_every=10_000, checkpoint_replay=False, total_steps=10_000_000),
             default=True, replaces=(f"dqn-{game.lower()}",))
      for game in ("Pong", "Breakout")),
)
