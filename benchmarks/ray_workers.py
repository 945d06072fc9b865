"""Rollout workers on Ray against the in-process collector: env steps/s, the learner's share, bytes per update.

    nice -n 19 python benchmarks/ray_workers.py [--cartpole-steps 300000] [--pong-steps 4000] [--docs]

Each case trains a real run (the trainer, the algorithm, TensorBoard) in this process on one local
Ray instance with 2 CPUs started once beforehand, so Ray's and the actors' start-up are not timed
(the trainer's clock starts at its first collection). The collector is timed from outside:
  collect s/s  env steps / seconds inside collector.collect (for workers: broadcast, waiting for the
               segments, merging them), i.e. what collection delivers while the learner waits on it
  train s/s    env steps / training seconds (collection + learning, as `steps_per_second` logs it)
  learner      share of the training seconds spent outside collect (the learner's own work)
  bytes/update the weights broadcast (ray.put of numpy arrays, once per update) + the batch returned
Cases: CartPole-v1 with the cartpole-reinforce preset (128 envs, 32 episodes per update) and
ALE/Pong-v5 with book-pong-pg (32 envs, 128 n-step transitions per update, the Nature CNN); 1 and 2
workers share the preset's env count between them (2 workers: half each).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import machine, publish  # noqa: E402

CASES = {"CartPole-v1": "cartpole-reinforce", "ALE/Pong-v5": "book-pong-pg"}


def batch_bytes(batch) -> int:
    return sum(v.nbytes for v in vars(batch).values() if hasattr(v, "nbytes"))


def measure(preset_name: str, workers: int, total_steps: int) -> dict:
    """Train `preset_name` for `total_steps` env steps, in process (workers=0) or on Ray workers."""
    from tfpg.algos.registry import REGISTRY
    from tfpg.training.checks import prepare_paths
    from tfpg.algos.registry import build_config, find_preset
    from tfpg.training.trainer import Trainer

    preset = find_preset(preset_name)
    num_envs = preset.overrides["num_envs"]
    with tempfile.TemporaryDirectory() as tmp:
        values = dict(total_steps=total_steps, stop_reward=None, progress=False, export=False, logdir=tmp,
                      run_name="bench", workers=workers)
        if workers:
            values["envs_per_worker"] = num_envs // workers
        config = build_config(None, None, preset_name, values)
        trainer = Trainer(REGISTRY[config.algo], config, *prepare_paths(config))
        timed = {"seconds": 0.0, "calls": 0, "bytes": 0}
        collect = trainer.algo.collector.collect

        def timed_collect(**request):
            started = time.perf_counter()
            batch = collect(**request)
            timed["seconds"] += time.perf_counter() - started
            timed["calls"] += 1
            timed["bytes"] = batch_bytes(batch)
            return batch

        trainer.algo.collector.collect = timed_collect
        result = trainer.run()
        weights = trainer.workers.broadcast_bytes if workers else 0
    return {"workers": workers, "env_steps": result.env_steps, "train_seconds": result.train_seconds,
            "collect_seconds": timed["seconds"], "updates": timed["calls"],
            "collect_steps_per_s": result.env_steps / timed["seconds"],
            "train_steps_per_s": result.env_steps / result.train_seconds,
            "learner_share": 1 - timed["seconds"] / result.train_seconds,
            "weights_bytes": weights, "batch_bytes": timed["bytes"]}


def size(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:.2f} MB" if num_bytes >= 100_000 else f"{num_bytes / 1e3:.1f} kB"


def table(results: dict, load: str) -> str:
    lines = ["| env (preset) | collector | collect env steps/s | train env steps/s | learner share | "
             "bytes per update (weights + batch) |", "|---|---|---:|---:|---:|---:|"]
    for env_id, rows in results.items():
        for r in rows:
            who = "in process" if r["workers"] == 0 else f"{r['workers']} Ray worker{'s' * (r['workers'] > 1)}"
            moved = f"{size(r['weights_bytes'])} + {size(r['batch_bytes'])}" if r["workers"] else "–"
            lines.append(f"| {env_id} ({CASES[env_id]}) | {who} | {r['collect_steps_per_s']:,.0f} | "
                         f"{r['train_steps_per_s']:,.0f} | {100 * r['learner_share']:.0f} % | {moved} |")
    m = machine()
    lines.append(f"\n{m['cpus']} cores, Python {m['python']}, {m['date']}, one local Ray instance with 2 CPUs; "
                 f"load average {load} when it started (the machine was shared); "
                 "`python benchmarks/ray_workers.py --docs`.")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cartpole-steps", type=int, default=300_000)
    p.add_argument("--pong-steps", type=int, default=4_000)
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into docs/results/ and results/ray_workers.json (--readme: the old name)")
    args = p.parse_args()
    from tfpg.core.quiet import import_tensorflow

    import_tensorflow()
    import ray

    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    steps = {"CartPole-v1": args.cartpole_steps, "ALE/Pong-v5": args.pong_steps}
    results = {}
    try:
        for env_id, preset in CASES.items():
            results[env_id] = []
            for workers in (0, 1, 2):
                row = measure(preset, workers, steps[env_id])
                print(env_id, row, flush=True)
                results[env_id].append(row)
    finally:
        ray.shutdown()
    publish("ray_workers", table(results, load), "ray_workers.json", {"load_average": load, "results": results},
            args.docs)


if __name__ == "__main__":
    main()
