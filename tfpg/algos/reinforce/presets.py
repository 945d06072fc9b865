"""REINFORCE's presets: each holds its source and only what differs from REINFORCE's defaults."""
from __future__ import annotations

from tfpg.config.run import Preset

BOOK = "M. Lapan, Deep Reinforcement Learning Hands-On, 2nd ed. (Packt, 2020), ch. 11 \"Policy Gradients\""

PRESETS = (
    Preset("cartpole-reinforce", "reinforce",
           "REINFORCE on CartPole-v1 tuned for wall-clock speed to reward_100 >= 475",
           "tfpg's own tuning (benchmarks/cartpole_reinforce.py, docs/results/cartpole.md)",
           dict(num_envs=128, hidden=(128,), lr=0.02, episodes_per_update=32, returns="reward_to_go",
                stop_reward=475.0, total_steps=1_000_000, activation="relu", baseline="none", critic_epochs=1,
                is_clip=0.0, normalize_obs=False, reuse_epochs=1, steps_per_update=0, target_kl=0.0, update="batch",
                critic_normalize=False, kl_adaptive_lr=False), default=True),
    Preset("cartpole-reinforce-graph", "reinforce",
           "REINFORCE on CartPole-v1 with --backend graph: 64 in-graph envs x 64-step rollouts, each iteration one "
           "XLA program; reward-to-go cut at the rollout's end, standardised",
           "tfpg's own tuning (benchmarks/graph_cartpole.py, docs/results/graph-backend.md)",
           dict(backend="graph", num_envs=64, hidden=(64,), lr=0.02, episodes_per_update=4, returns="reward_to_go",
                stop_reward=475.0, total_steps=1_000_000, activation="relu", baseline="none", critic_epochs=1,
                is_clip=0.0, normalize_obs=False, reuse_epochs=1, steps_per_update=0, target_kl=0.0, update="batch",
                critic_normalize=False, kl_adaptive_lr=False)),
    Preset("book-cartpole-reinforce", "reinforce",
           "the book's REINFORCE: 128 hidden, Adam 0.01, gamma 0.99, 4 episodes/update, no baseline",
           f"{BOOK}, script Chapter11/02_cartpole_reinforce.py",
           dict(num_envs=1, hidden=(128,), lr=0.01, episodes_per_update=4, returns="reward_to_go", normalize=False,
                baseline="none", stop_reward=475.0, total_steps=1_000_000, activation="relu", critic_epochs=1,
                is_clip=0.0, normalize_obs=False, reuse_epochs=1, steps_per_update=0, target_kl=0.0, update="batch",
                critic_normalize=False, kl_adaptive_lr=False),
           replaces=("seed000-cartpole-reinforce",)),
    Preset("book-cartpole-pg", "reinforce",
           "the book's vanilla PG: 10-step returns, batches of 8 transitions, mean baseline, entropy 0.01, Adam 0.001",
           f"{BOOK}, script Chapter11/04_cartpole_pg.py",
           dict(num_envs=1, hidden=(128,), returns="nstep", steps_per_update=8, baseline="mean", entropy_beta=0.01,
                normalize=False, stop_reward=475.0, total_steps=1_000_000, activation="relu", critic_epochs=1,
                episodes_per_update=4, is_clip=0.0, normalize_obs=False, reuse_epochs=1, target_kl=0.0,
                update="batch", critic_normalize=False, kl_adaptive_lr=False),
           replaces=("seed000-cartpole-pg",)),
    Preset("fastcampus-batch-reinforce", "reinforce",
           "batch-episodic REINFORCE: update every 2 episodes over sum T_i, gamma 1, normalised returns, 128 hidden",
           "blog post \"29. Policy Gradient 실습 2\" (Policy Gradient practice 2: Batch REINFORCE), notes on the "
           "Fastcampus reinforcement-learning course; the post gives no learning rate, 2e-4 used",
           dict(num_envs=1, hidden=(128,), lr=2e-4, gamma=1.0, update="batch", episodes_per_update=2,
                returns="reward_to_go", baseline="none", stop_reward=475.0, total_steps=1_000_000, activation="relu",
                critic_epochs=1, is_clip=0.0, normalize_obs=False, reuse_epochs=1, steps_per_update=0, target_kl=0.0,
                critic_normalize=False, kl_adaptive_lr=False),
           replaces=("seed002-batch-reinforce",)),
    # KL-stopped reuse of large minibatches: each epoch is a small step, so --target-kl can stop the batch
    # before the policy moves far. The sigma ceiling lets the sampling policy come to rest (the +100 landing
    # bonus); the KL-adaptive lr keeps the steps safe as sigma falls (docs/journal/2026-11-23-lunarlander-reinforce-preset.md).
    Preset("lunarlander-pg", "reinforce",
           "Gaussian PG on LunarLanderContinuous-v3 to reward_100 >= 200: GAE(0.98) from a Keras critic, KL-stopped "
           "minibatch reuse with a KL-adaptive lr, sigma capped by a ceiling falling to 0.3",
           "tfpg's own tuning (docs/results/lunarlander.md, run V1)",
           dict(env_id="LunarLanderContinuous-v3", policy="gaussian", num_envs=16, vector_mode="sync", gamma=0.999,
                gae_lambda=0.98, critic_epochs=20, steps_per_update=8000, minibatch_size=2000, lr=3e-4, grad_clip=0.5,
                std_ceiling=0.3, std_ceiling_steps=400_000, stop_reward=200.0, total_steps=2_000_000,
                eval_every=100_000, critic_normalize=False), default=True),
    Preset("gaussian-pg-lunarlander", "reinforce",
           "the post's Gaussian REINFORCE: mean net 32-32 relu, free log-std, gamma 0.97, >= 3000 steps of complete "
           "episodes per update, scikit-learn linear baseline, standardised advantages, Adam 1e-3",
           "blog post \"Gaussian Policy Gradient (PG)\" on LunarLanderContinuous (TF1 + Keras + scikit-learn, "
           "Colab notebook); TF1 Adam defaults (eps 1e-8)",
           dict(env_id="LunarLanderContinuous-v3", policy="gaussian", vector_mode="sync", hidden=(32, 32),
                activation="relu", normalize_obs=False, gamma=0.97, returns="reward_to_go", baseline="linear",
                steps_per_update=3000, update="batch", adam_eps=1e-8, stop_reward=200.0, total_steps=1_500_000,
                critic_epochs=1, is_clip=0.0, reuse_epochs=1, target_kl=0.0, critic_normalize=False,
                kl_adaptive_lr=False),
           replaces=("seed004-lunarlander",)),
    Preset("book-pong-pg", "reinforce",
           "the book's PG on Pong: 32 envs, Nature CNN, Adam 1e-4 (eps 1e-3), entropy 0.01, batches of 128 "
           "transitions, 10-step returns, moving baseline over 1,000,000 transitions, grad clip 0.1, stop at 18",
           f"{BOOK}, script Chapter11/05_pong_pg.py, on ALE/Pong-v5 built as NoFrameskip-v4",
           dict(env_id="ALE/Pong-v5", num_envs=32, hidden=(512,), lr=1e-4, adam_eps=1e-3, entropy_beta=0.01,
                steps_per_update=128, returns="nstep", baseline="moving", grad_clip=0.1, normalize=False,
                stop_reward=18.0, total_steps=10_000_000, activation="relu", critic_epochs=1, episodes_per_update=4,
                is_clip=0.0, normalize_obs=False, reuse_epochs=1, target_kl=0.0, update="batch",
                critic_normalize=False, kl_adaptive_lr=False),
           default=True),
)
