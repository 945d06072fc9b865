"""Training throughput on Pong: env frames per second for book-pong-pg and zoo-dqn-pong, and replay memory.

    nice -n 19 python benchmarks/atari_throughput.py [--warmup 4000] [--steps 20000] [--docs]

Each preset trains for warm-up + budget agent steps in a fresh `train.py` process; the rate is
taken between the first log at or after the warm-up (tracing, XLA compilation and, for DQN, the
random-action phase are behind it) and the end, from the logged cumulative `steps_per_second`.
Frames = agent steps x 4 (frame skip). DQN starts learning after 2,000 steps here instead of the
preset's 100,000 so that the timed part includes its gradient steps (one per 4 env steps,
batch 32); its epsilon is still near 1 then, so most actions are random (no Q-network call).
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import machine, run_training, save, write_docs_section  # noqa: E402

RUNS = {
    "book-pong-pg": [],
    "zoo-dqn-pong": ["--learning-starts", "2000", "--log-every", "1000"],
}


def timed_rate(curve, warmup: int) -> tuple[float, int]:
    """Agent steps/s between the first logged point at or after `warmup` steps and the last one."""
    points = [(step, step / sps) for step, sps in curve if sps > 0]   # (env steps, seconds since the clock started)
    start = next(p for p in points if p[0] >= warmup)
    end = points[-1]
    return (end[0] - start[0]) / (end[1] - start[1]), end[0] - start[0]


def replay_memory() -> dict:
    import gymnasium as gym
    import numpy as np

    from tfpg.experience.replay import PixelReplayBuffer

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    buffer = PixelReplayBuffer(100_000, space, gym.spaces.Discrete(6), num_envs=1)   # np.zeros: not touched, no RSS
    per = buffer.bytes_per_transition
    return {"bytes_per_transition": per, "GiB_per_1M": per * 1e6 / 2**30,
            "stacked_obs_and_next_obs_bytes": 2 * 4 * 84 * 84}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warmup", type=int, default=4_000)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    results = {}
    for preset, extra in RUNS.items():
        summary = run_training(["--preset", preset, "--total-steps", str(args.warmup + args.steps), *extra], seed=0,
                               curves=("steps_per_second",))
        rate, timed = timed_rate(summary["curves"]["steps_per_second"], args.warmup)
        results[preset] = {"agent_steps_per_s": rate, "frames_per_s": 4 * rate, "timed_agent_steps": timed,
                           "env_steps": summary["env_steps"], "train_seconds": summary["train_seconds"],
                           "num_envs": 32 if preset == "book-pong-pg" else 1, "extra_flags": extra}
        print(f"{preset}: {4 * rate:,.0f} frames/s ({rate:,.0f} agent steps/s over {timed:,} steps)", flush=True)
    memory = replay_memory()
    print(memory)
    nice = os.nice(0)
    save("atari_throughput.json", {"results": results, "replay": memory, "warmup": args.warmup, "steps": args.steps,
                                   "nice": nice, "machine": machine()})
    if not args.docs:
        return
    lines = ["| preset | envs | env frames/s (agent steps × 4) | agent steps/s |", "|---|---:|---:|---:|"]
    for preset, r in results.items():
        lines.append(f"| `{preset}` | {r['num_envs']} | {r['frames_per_s']:,.0f} | {r['agent_steps_per_s']:,.0f} |")
    lines.append("")
    lines.append(f"Pong training, {args.steps:,} agent steps timed after a {args.warmup:,}-step warm-up, seed 0, "
                 f"niceness {nice} on a shared {os.cpu_count()}-core machine (`benchmarks/atari_throughput.py`); "
                 f"DQN learns from step 2,000 here (`--learning-starts 2000`). Pixel replay: "
                 f"{memory['bytes_per_transition']:,.0f} bytes per transition (one 84×84 frame plus "
                 f"{memory['bytes_per_transition'] - 84 * 84:.0f} bytes of fields) against "
                 f"{memory['stacked_obs_and_next_obs_bytes']:,} for stored s and s′ stacks; "
                 f"1M transitions: {memory['GiB_per_1M']:.1f} GiB.")
    write_docs_section("atari", "\n".join(lines))


if __name__ == "__main__":
    main()
