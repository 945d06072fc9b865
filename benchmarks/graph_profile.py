"""Where an iteration of `--backend graph` spends its time: the preset cartpole-reinforce-graph (N = 64 envs,
T = 64 steps) with K agents, its parts timed apart.

    python benchmarks/graph_profile.py [--agents 1 64] [--repeats 20] [--docs]

Per K, in one process: a GraphTrainer of the preset, its first call (trace + XLA compile + that iteration and
its logging), then `--repeats` timed calls of each part, wall and CPU (process) time, median:
  iteration   program() and the trainer's host work after it (what training runs)
  program     the compiled rollout + update alone, outputs fetched
  rollout     the rollout alone, compiled the same way (XLA)
  env         the env step alone over the K x N envs, random actions, no policy (XLA)
  update      the learner's update alone on one fixed rollout (XLA)
  host        the trainer's work on ready outputs: episode statistics, milestones, the summary writes
  summaries   the summary writes alone (one graph call for all agents' scalars)
The parts overlap (rollout includes env; iteration includes program and host). CPU time counts both cores'
threads, so it can exceed wall time; on a shared machine wall time also counts the waits for a core, CPU time
does not. No checkpoints, no evaluations; the run folder is deleted at the end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import machine, publish

PARTS = ("iteration", "program", "rollout", "env", "update", "host", "summaries")


def timed(fn, repeats: int) -> dict:
    """Median wall and CPU milliseconds of `repeats` calls of fn (after one untimed call)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"wall_ms": 1e3 * statistics.median(wall), "cpu_ms": 1e3 * statistics.median(cpu)}


def part_functions(trainer) -> dict:
    """The parts as callables that block until their result is on the host."""
    import numpy as np
    import tensorflow as tf

    from tfpg.envs.graph.core import RNG_ALG, EnvState
    from tfpg.training.graph_trainer import EPISODE_TAGS

    collector, learner, length = trainer.collector, trainer.learner, trainer.learner.rollout_steps
    k_n = collector.num_agents * collector.num_envs
    compiled = tf.function(jit_compile=True, autograph=False)

    @compiled
    def rollout():
        return tf.reduce_sum(collector.rollout(learner.policy, length).rewards)

    @compiled
    def env_steps():
        def step(state, keys):
            actions = tf.random.stateless_uniform([k_n], seed=keys[0, 0], maxval=2, dtype=tf.int32, alg=RNG_ALG)
            out = collector.flat_env.step(EnvState(*state), actions, keys[:, 1])
            return out.state.physics, out.state.steps

        start = (tf.reshape(collector.physics, [k_n, -1]), tf.reshape(collector.steps, [k_n]))
        return tf.reduce_sum(tf.scan(step, collector.next_keys(length), initializer=start)[0][-1])

    fixed = compiled(lambda: collector.rollout(learner.policy, length))()
    update = compiled(lambda batch: learner.learn(batch)[1])
    outputs = [x.numpy() for x in trainer.program()]
    values = tf.constant(np.zeros([len(EPISODE_TAGS) + outputs[0].shape[0], collector.num_agents], np.float32))
    return {
        "iteration": lambda: trainer._after_iteration(*trainer.program()),
        "program": lambda: [x.numpy() for x in trainer.program()],
        "rollout": lambda: rollout().numpy(),
        "env": lambda: env_steps().numpy(),
        "update": lambda: update(fixed).numpy(),
        "host": lambda: trainer._after_iteration(*map(tf.constant, outputs)),
        "summaries": lambda: trainer._write_summaries(tf.constant(0, tf.int64), values),
    }


def profile(agents: int, repeats: int) -> dict:
    from tfpg.algos.registry import REGISTRY
    from tfpg.algos.registry import build_config
    from tfpg.training.graph_trainer import GraphTrainer

    with tempfile.TemporaryDirectory() as tmp:
        config = build_config(None, None, "cartpole-reinforce-graph", {
            "num_seeds": agents, "logdir": tmp, "run_name": "profile", "export": False, "progress": False,
            "checkpoint_every": 0, "eval_every": 0})
        trainer = GraphTrainer(REGISTRY["reinforce"], config, os.path.join(tmp, "profile"), None)
        t0 = time.perf_counter()
        trainer._first_call()
        trainer._t0 = time.perf_counter()
        row = {"agents": agents, "compile_s": time.perf_counter() - t0,
               "env_steps": agents * config.num_envs * trainer.learner.rollout_steps, "load_before": os.getloadavg()[0]}
        row.update({name: timed(fn, repeats) for name, fn in part_functions(trainer).items()})
        row["load_after"] = os.getloadavg()[0]
        for agent in trainer.agents:
            agent.logger.close()
        print(row, flush=True)
        return row


def table(rows) -> str:
    lines = ["| K | compile s | " + " | ".join(f"{p} ms" for p in PARTS) + " | env steps/s (iteration) | load |",
             "|---" * (len(PARTS) + 4) + "|"]
    for r in rows:
        cells = " | ".join(f"{r[p]['wall_ms']:.1f} ({r[p]['cpu_ms']:.1f})" for p in PARTS)
        rate = r["env_steps"] / r["iteration"]["wall_ms"] * 1e3
        lines.append(f"| {r['agents']} | {r['compile_s']:.1f} | {cells} | {rate:,.0f} "
                     f"| {r['load_before']:.1f}–{r['load_after']:.1f} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, nargs="+", default=[1, 64])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    rows = [profile(k, args.repeats) for k in args.agents]
    m = machine()
    text = (table(rows) + f"\n\nWall ms (CPU ms in brackets), median of {args.repeats} calls per part; N = 64, T = 64; "
            f"{m['cpus']} cores, Python {m['python']}, {m['date']}; 1-min load average before–after each K (the "
            "machine was shared); `python benchmarks/graph_profile.py --docs`.")
    publish("graph-profile", text, "graph_profile.json", {"rows": rows}, args.docs)


if __name__ == "__main__":
    main()
