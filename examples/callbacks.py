"""Callbacks: your code at the loop's four moments. Returning False from on_iteration stops the run cleanly
(checkpoint, and with tfpg.train the last evaluation, the export and summary.json).

    python examples/callbacks.py
"""
import os

import tfpg

STEPS = int(os.environ.get("TFPG_EXAMPLE_STEPS", 20_000))


class StopWhenSteady(tfpg.Callback):
    """Stop once the last `patience` greedy evaluations all scored at least `target`."""

    def __init__(self, target: float, patience: int = 2):
        self.target, self.patience, self.scores = target, patience, []

    def on_evaluation(self, info):
        self.scores.append(info.mean_return)
        print(f"  evaluation at {info.env_steps:>6} env steps: {info.mean_return:.2f}")

    def on_iteration(self, info):
        recent = self.scores[-self.patience:]
        if len(recent) == self.patience and min(recent) >= self.target:
            print(f"  steady at {info.env_steps} env steps: stopping")
            return False


class PrintLoss(tfpg.Callback):
    def on_iteration(self, info):
        if info.env_steps % 4096 < 256:   # about every 4k steps: reading the metrics costs a little
            print(f"  {info.env_steps:>6} steps  reward_100 {info.reward_100:6.2f}  "
                  f"policy loss {info.metrics['loss_policy']:+.3f}")


if __name__ == "__main__":
    result = tfpg.train(algo="ppo", env="corridor_envs:Corridor-v0", seed=0, total_steps=STEPS, num_envs=4,
                        horizon=64, eval_every=1024, eval_episodes=5, progress=False, logdir="runs",
                        export_dir="saved_models", callbacks=[StopWhenSteady(target=0.7), PrintLoss()])
    print(f"{result.env_steps} env steps; exported to {result.export_path}")
