"""Env steps per second of the in-graph envs (tfpg.envs.graph) against gymnasium's vector envs.

    python benchmarks/graph_envs_throughput.py [--num-envs 1 64 1024 8192] [--env-ids CartPole-v1 ...]

Random actions, no policy. The TF side is one compiled `tf.while_loop` of T steps over N envs
(actions drawn in graph, same-step auto-reset), timed as a plain `tf.function` graph and with
`jit_compile=True` (XLA); "compile s" is the first call (trace + compile + one run) less a timed
run. The loop sums rewards, episode ends and observations so that nothing is pruned as
unused (a policy would read the observations). gymnasium: CartPole's own numpy-batched
`CartPoleVectorEnv` (vectorization_mode="vector_entry_point") and `SyncVectorEnv` ("sync"), both
NEXT_STEP autoreset, numpy random actions, for CartPole only. Each figure is the median of
`--repeats` timed runs of about `--work` env steps (N x T). Run it alone: it measures the machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import machine, save


def steps_for(num_envs: int, work: int, max_steps: int) -> int:
    """T such that N x T is about `work` env steps (at least 50 steps, at most max_steps)."""
    return int(min(max_steps, max(50, work // num_envs)))


def graph_loop(env, num_envs: int, num_steps: int, jit_compile: bool):
    """A tf.function(key) running num_steps random-action steps of num_envs envs in a while_loop;
    returns (reward sum, episode ends, observation checksum)."""
    import tensorflow as tf

    from tfpg.envs.graph import split_key

    @tf.function(jit_compile=jit_compile)
    def run(key):
        reset_key, key = split_key(key)
        state, _ = env.reset(reset_key, num_envs)

        def body(t, state, key, reward_sum, episode_ends, obs_sum):
            key, action_key, env_key = split_key(key, 3)
            out = env.step(state, env.sample_actions(action_key, num_envs), env_key)
            ends = tf.reduce_sum(tf.cast(out.terminated | out.truncated, tf.int32))
            return (t + 1, out.state, key, reward_sum + tf.reduce_sum(out.reward), episode_ends + ends,
                    obs_sum + tf.reduce_sum(out.obs))

        start = (tf.constant(0), state, key, tf.constant(0.0), tf.constant(0), tf.constant(0.0))
        result = tf.while_loop(lambda t, *_: t < num_steps, body, start)
        return result[3:]

    return run


def time_graph(env_id: str, num_envs: int, num_steps: int, jit_compile: bool, repeats: int) -> dict:
    from tfpg.envs.graph import make, make_key

    run = graph_loop(make(env_id), num_envs, num_steps, jit_compile)
    t0 = time.perf_counter()
    run(make_key(0))[0].numpy()
    first_call_s = time.perf_counter() - t0
    run_s = []
    for i in range(repeats):
        t0 = time.perf_counter()
        run(make_key(i + 1))[0].numpy()
        run_s.append(time.perf_counter() - t0)
    median_s = statistics.median(run_s)
    # the first call traces, compiles and runs once: its compile share is what exceeds a timed run
    return {"steps_per_s": num_envs * num_steps / median_s, "compile_s": max(0.0, first_call_s - median_s),
            "first_call_s": first_call_s}


def time_gymnasium(env_id: str, num_envs: int, num_steps: int, mode: str, repeats: int) -> dict:
    import gymnasium as gym
    import numpy as np

    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    rng = np.random.default_rng(0)
    envs.reset(seed=0)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(num_steps):
            envs.step(rng.integers(0, 2, size=num_envs))
        rates.append(num_envs * num_steps / (time.perf_counter() - t0))
    envs.close()
    return {"steps_per_s": statistics.median(rates), "compile_s": None}


def measure(env_ids, sizes, work: int, repeats: int) -> list[dict]:
    """One row per (env, N, backend). gymnasium's Python loop is ~100x slower, so it gets a tenth
    of the work per timed run (still >= 0.1 s)."""
    rows = []
    for env_id in env_ids:
        backends = ["tf graph", "tf XLA"]
        if env_id == "CartPole-v1":
            backends += ["gymnasium vector_entry_point", "gymnasium sync"]
        for n in sizes:
            for backend in backends:
                if backend.startswith("tf"):
                    num_steps = steps_for(n, work, 20_000)
                    result = time_graph(env_id, n, num_steps, backend == "tf XLA", repeats)
                else:
                    num_steps = steps_for(n, work // 10, 2_000)
                    result = time_gymnasium(env_id, n, num_steps, backend.split()[1], repeats)
                rows.append({"env_id": env_id, "num_envs": n, "backend": backend, "steps": num_steps, **result})
                print(rows[-1], flush=True)
    return rows


def table(rows) -> str:
    lines = ["| env | N | backend | T | env steps/s | compile s |", "|---|---:|---|---:|---:|---:|"]
    for r in rows:
        compile_s = "–" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
        lines.append(f"| {r['env_id']} | {r['num_envs']} | {r['backend']} | {r['steps']} | {r['steps_per_s']:,.0f} "
                     f"| {compile_s} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 1024, 8192])
    p.add_argument("--env-ids", nargs="+", default=["CartPole-v1"])
    p.add_argument("--work", type=int, default=2_000_000, help="env steps (N x T) per timed TF run")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    rows = measure(args.env_ids, args.num_envs, args.work, args.repeats)
    m = machine()
    print(f"\nRandom actions, median of {args.repeats}; {m['cpus']} cores, {m['date']}.\n")
    print(table(rows))
    save("graph_envs_throughput.json", {"machine": m, "args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
