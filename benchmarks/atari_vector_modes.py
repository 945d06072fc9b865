"""Atari vector envs: ale-py's C++ vector env against gymnasium's over tfpg's Python wrappers.

    nice -n 19 python benchmarks/atari_vector_modes.py [--env ALE/Pong-v5] [--envs 8 16] [--steps 10000]

Throughput: agent steps/s (x4 for frames) with uniformly random actions, median of 3 runs per
(mode, N), after a short warm-up. Equivalence: the C++ env configured like tfpg's wrappers
(no sticky actions, 30 no-ops, frame skip 4 with max-pooling, grey 84x84, stack 4, no fire reset,
no built-in reward clipping) is compared with `tfpg.envs.atari.make_atari_env`, frame by frame on the
same action sequence, and on what the stack holds at an episode start.
Writes benchmarks/results/atari_vector_modes.json and the section bench:atari-vector of docs/results/atari.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import gymnasium as gym
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import machine, save, write_docs_section  # noqa: E402
from tfpg.envs import atari  # noqa: E402
from tfpg.envs import make as envs_lib

CPP_OPTIONS = dict(repeat_action_probability=0.0, full_action_space=False, frameskip=atari.FRAME_SKIP,
                   noop_max=atari.NOOP_MAX, img_height=atari.SCREEN_SIZE, img_width=atari.SCREEN_SIZE,
                   grayscale=True, stack_num=atari.FRAME_STACK, maxpool=True, use_fire_reset=False,
                   reward_clipping=False, episodic_life=False)


def make(mode: str, env_id: str, n: int) -> gym.vector.VectorEnv:
    if mode == "vector_entry_point":
        return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **CPP_OPTIONS)
    return atari.make_atari_vec_env(env_id, n, mode)


def steps_per_second(mode: str, env_id: str, n: int, agent_steps: int, seed: int) -> float:
    envs = make(mode, env_id, n)
    try:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
        for _ in range(20):   # warm-up: worker start, first resets
            envs.step(envs.action_space.sample())
        vector_steps = max(1, agent_steps // n)
        t0 = time.perf_counter()
        for _ in range(vector_steps):
            envs.step(envs.action_space.sample())
        return vector_steps * n / (time.perf_counter() - t0)
    finally:
        envs.close()


def equivalence(env_id: str, steps: int = 300) -> dict:
    """Compare the C++ env (noop_max=1, i.e. no no-ops) with the wrappers (noop_max=0) on one action sequence."""
    cpp = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", **{**CPP_OPTIONS, "noop_max": 1})
    py = gym.make(env_id, frameskip=1, repeat_action_probability=0.0, full_action_space=False)
    py = gym.wrappers.FrameStackObservation(
        gym.wrappers.AtariPreprocessing(py, noop_max=0, frame_skip=4, screen_size=84, grayscale_obs=True,
                                        scale_obs=False), 4)
    try:
        o_cpp, _ = cpp.reset(seed=1)
        o_py, _ = py.reset(seed=1)
        out = {"cpp_obs": f"{o_cpp.shape[1:]} {o_cpp.dtype}", "python_obs": f"{o_py.shape} {o_py.dtype}",
               "reset_newest_frame_equal": bool(np.array_equal(o_cpp[0, -1], o_py[-1])),
               "reset_padding_cpp_max_pixel": int(o_cpp[0, :-1].max()),
               "reset_padding_python_repeats_reset_frame": bool(all(np.array_equal(o_py[k], o_py[-1]) for k in range(3)))}
        rng = np.random.default_rng(0)
        differing, rewards_equal = 0, True
        for _ in range(steps):
            a = int(rng.integers(py.action_space.n))
            o_cpp, r_cpp, *_ = cpp.step(np.array([a]))
            o_py, r_py, *_ = py.step(a)
            differing += int(not np.array_equal(o_cpp[0, -1], o_py[-1]))
            rewards_equal &= float(r_cpp[0]) == float(r_py)
        out.update(steps_compared=steps, steps_with_different_newest_frame=differing, rewards_equal=bool(rewards_equal))
        return out
    finally:
        cpp.close()
        py.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="ALE/Pong-v5")
    p.add_argument("--envs", type=int, nargs="+", default=[8, 16])
    p.add_argument("--steps", type=int, default=10_000, help="agent steps per timed run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-docs", "--no-readme", dest="no_docs", action="store_true", help="print the table only")
    args = p.parse_args()
    envs_lib.check_env_id(args.env)   # registers ale_py
    nice = os.nice(0)
    results = []
    for n in args.envs:
        for mode in ("vector_entry_point", "async", "sync"):
            runs = [steps_per_second(mode, args.env, n, args.steps, seed) for seed in range(args.repeats)]
            results.append({"mode": mode, "num_envs": n, "steps_per_s": runs, "median": statistics.median(runs)})
            print(f"{mode:>18} x{n:<3} {statistics.median(runs):8.0f} agent steps/s  {[round(r) for r in runs]}", flush=True)
    eq = equivalence(args.env)
    print(eq)
    save("atari_vector_modes.json", {"env_id": args.env, "agent_steps_per_run": args.steps, "nice": nice,
                                     "results": results, "equivalence": eq, "machine": machine()})
    if args.no_docs:
        return
    lines = ["| vector env | envs | agent steps/s (median of 3) | frames/s |", "|---|---:|---:|---:|"]
    names = {"vector_entry_point": "ale-py C++ `AtariVectorEnv`", "async": "`AsyncVectorEnv` + wrappers",
             "sync": "`SyncVectorEnv` + wrappers"}
    for r in results:
        lines.append(f"| {names[r['mode']]} | {r['num_envs']} | {r['median']:,.0f} | {4 * r['median']:,.0f} |")
    lines.append("")
    lines.append(f"{args.env}, random actions, {args.steps:,} agent steps per run, niceness {nice} on a shared "
                 f"{os.cpu_count()}-core machine. Same action sequence, {eq['steps_compared']} steps: newest frame "
                 f"different in {eq['steps_with_different_newest_frame']} steps, rewards equal: {eq['rewards_equal']}; "
                 f"at an episode start the C++ stack pads with black frames (max pixel "
                 f"{eq['reset_padding_cpp_max_pixel']}), the wrappers repeat the reset frame "
                 f"({eq['reset_padding_python_repeats_reset_frame']}).")
    write_docs_section("atari-vector", "\n".join(lines))


if __name__ == "__main__":
    main()
