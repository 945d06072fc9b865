"""The first logged values of representative runs, to show that a refactor keeps behaviour.

    python benchmarks/behaviour_fingerprint.py --out fingerprint.json
    python benchmarks/behaviour_fingerprint.py --compare benchmarks/results/behaviour_fingerprint.json fingerprint.json

For each case (seed 0), trains for a short budget and records the first 20 logged values of
`reward_100` and of the algorithm's loss tag from the TensorBoard events. The cases are the default
preset of every algorithm, the old seed presets, `cartpole-reinforce-graph` (the graph backend) and a
`--workers 2` run (Ray rollout workers). Two fingerprints taken before and after a change must be
equal, value for value; `benchmarks/results/behaviour_fingerprint.json` is the committed reference.
"""
from __future__ import annotations

import argparse
import json
import sys

from common import run_training

# case -> (train.py arguments, budget in env steps that gives >= 20 logged points, the loss tag)
CASES = {
    "cartpole-reinforce": (["--preset", "cartpole-reinforce"], 200_000, "loss_policy"),
    "dqn-cartpole": (["--preset", "dqn-cartpole", "--stop-on", "train"], 25_000, "td_loss"),
    "lunarlander-pg": (["--preset", "lunarlander-pg"], 170_000, "loss_policy"),
    "a2c-cartpole": (["--preset", "a2c-cartpole"], 4_000, "loss_policy"),
    "ppo-cartpole": (["--preset", "ppo-cartpole"], 8_000, "loss_policy"),
    "trpo-cartpole": (["--preset", "trpo-cartpole"], 24_000, "improvement"),
    "npg-cartpole-defaults": (["--algo", "npg", "--env", "CartPole-v1"], 60_000, "improvement"),
    "cartpole-reinforce-graph": (["--preset", "cartpole-reinforce-graph"], 120_000, "loss_policy"),
    "ppo-cartpole-workers-2": (["--preset", "ppo-cartpole", "--workers", "2", "--ray-num-cpus", "2"], 12_000,
                               "loss_policy"),
}
POINTS = 20


def fingerprint(cases) -> dict:
    out = {}
    for case in cases:
        args, budget, loss_tag = CASES[case]
        args = [*args, "--total-steps", str(budget), "--stop-reward", "1e9"]
        summary = run_training(args, seed=0, curves=("reward_100", loss_tag))
        out[case] = {tag: points[:POINTS] for tag, points in summary["curves"].items()}
        print(case, {tag: len(p) for tag, p in out[case].items()}, file=sys.stderr, flush=True)
    return out


def compare(before: dict, after: dict) -> int:
    differences = 0
    for case, tags in before.items():
        for tag, points in tags.items():
            other = after.get(case, {}).get(tag, [])
            same = points == other
            differences += not same
            print(f"{case:<26} {tag:<12} {len(points)} points: {'identical' if same else 'DIFFERENT'}")
            if not same:
                for a, b in zip(points, other):
                    if a != b:
                        print(f"    first difference: {a} vs {b}")
                        break
    return 1 if differences else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out")
    p.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = p.parse_args()
    if args.compare:
        with open(args.compare[0]) as f, open(args.compare[1]) as g:
            return compare(json.load(f), json.load(g))
    result = fingerprint(args.cases)
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
