"""The first logged values of a preset's run, to show that a refactor keeps behaviour.

    python benchmarks/behaviour_fingerprint.py --out fingerprint.json
    python benchmarks/behaviour_fingerprint.py --compare before.json after.json

For each preset (seed 0), trains for a short budget and records the first 20 logged values of
`reward_100` and of the algorithm's loss (`loss_policy` or `td_loss`) from the TensorBoard events.
Two fingerprints taken before and after a change must be equal, value for value.
"""
from __future__ import annotations

import argparse
import json
import sys

from common import run_training

# preset -> (budget in env steps that gives >= 20 logged points, the loss tag)
PRESETS = {
    "cartpole-reinforce": (200_000, "loss_policy"),
    "dqn-cartpole": (25_000, "td_loss"),
    "lunarlander-pg": (170_000, "loss_policy"),
}
POINTS = 20


def fingerprint(presets) -> dict:
    out = {}
    for preset in presets:
        budget, loss_tag = PRESETS[preset]
        args = ["--preset", preset, "--total-steps", str(budget), "--stop-reward", "1e9"]
        if preset == "dqn-cartpole":
            args += ["--stop-on", "train"]
        summary = run_training(args, seed=0, curves=("reward_100", loss_tag))
        out[preset] = {tag: points[:POINTS] for tag, points in summary["curves"].items()}
        print(preset, {tag: len(p) for tag, p in out[preset].items()}, file=sys.stderr)
    return out


def compare(before: dict, after: dict) -> int:
    differences = 0
    for preset, tags in before.items():
        for tag, points in tags.items():
            other = after.get(preset, {}).get(tag, [])
            same = points == other
            differences += not same
            print(f"{preset:<20} {tag:<12} {len(points)} points: {'identical' if same else 'DIFFERENT'}")
            if not same:
                for a, b in zip(points, other):
                    if a != b:
                        print(f"    first difference: {a} vs {b}")
                        break
    return 1 if differences else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out")
    p.add_argument("--presets", nargs="*", default=list(PRESETS))
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = p.parse_args()
    if args.compare:
        with open(args.compare[0]) as f, open(args.compare[1]) as g:
            return compare(json.load(f), json.load(g))
    result = fingerprint(args.presets)
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
