"""The fallback defaults on envs without a preset: does `train.py --algo A --env E` learn within the zoo's budget?

    python benchmarks/no_preset.py [--algos ppo a2c trpo npg reinforce dqn] [--envs Acrobot-v1 ...] [--seeds 0]
                                   [--resume] [--readme]

Each run is `train.py --algo A --env E --total-steps B --seed S` with no other setting (the env has no
preset for A, so every hyperparameter is the algorithm's dataclass default), then one greedy evaluation of
20 episodes at the end. B is rl-baselines3-zoo's `n_timesteps` for the algorithm on the env
(hyperparams/{a2c,ppo,trpo,dqn}.yml); REINFORCE, which the zoo lacks, gets A2C's budgets, and NPG TRPO's.

"Learned" means: the greedy mean is at least the bar, the mean minus one standard deviation of the zoo's
own tuned agent for that algorithm (its benchmark.md, one trained agent evaluated deterministically over
~150k steps), i.e. within the spread of what the zoo's per-env tuning reaches in the same budget. Where
the zoo has no agent for the pair, the bar is the lowest of that env's bars. The zoo tuned each entry for
its env; tfpg's numbers here come from one set of defaults for every env.

The JSON goes to results/no_preset.json after every run (--resume skips the pairs and seeds in it);
--readme writes the README table. Runs go one at a time in a process, so a pair's seconds are indicative
only (two processes on disjoint --algos, each with its own --json, halve the wall time; --merge joins
them for the table).
"""
import argparse
import json
import os
import statistics

from common import RESULTS, machine, run_training, save, write_readme_section

EVAL_EPISODES = 20
# rl-baselines3-zoo hyperparams/*.yml n_timesteps (rl-zoo3 2.x; gymnasium ids)
ZOO_BUDGET = {
    "ppo": {"Acrobot-v1": 1_000_000, "MountainCar-v0": 1_000_000, "MountainCarContinuous-v0": 20_000,
            "Pendulum-v1": 100_000, "LunarLander-v3": 1_000_000, "BipedalWalker-v3": 5_000_000},
    "a2c": {"Acrobot-v1": 500_000, "MountainCar-v0": 1_000_000, "MountainCarContinuous-v0": 100_000,
            "Pendulum-v1": 1_000_000, "LunarLander-v3": 200_000, "BipedalWalker-v3": 5_000_000},
    "trpo": {"Acrobot-v1": 100_000, "MountainCar-v0": 100_000, "MountainCarContinuous-v0": 50_000,
             "Pendulum-v1": 100_000, "LunarLander-v3": 200_000, "BipedalWalker-v3": 1_000_000},
    "dqn": {"Acrobot-v1": 100_000, "MountainCar-v0": 120_000, "LunarLander-v3": 100_000},
}
ZOO_BUDGET["npg"] = ZOO_BUDGET["trpo"]
ZOO_BUDGET["reinforce"] = ZOO_BUDGET["a2c"]
# rl-baselines3-zoo benchmark.md: (mean, std) of the zoo's trained agent (the -v0/-v2 ids of its table)
ZOO_SCORE = {
    ("a2c", "Acrobot-v1"): (-83.353, 17.213), ("a2c", "MountainCar-v0"): (-111.263, 24.087),
    ("a2c", "MountainCarContinuous-v0"): (91.166, 0.255), ("a2c", "Pendulum-v1"): (-162.965, 103.210),
    ("a2c", "LunarLander-v3"): (155.751, 80.419), ("a2c", "BipedalWalker-v3"): (299.754, 23.459),
    ("ppo", "Acrobot-v1"): (-73.506, 18.201), ("ppo", "MountainCar-v0"): (-110.423, 19.473),
    ("ppo", "MountainCarContinuous-v0"): (88.343, 2.572), ("ppo", "Pendulum-v1"): (-169.887, 104.904),
    ("ppo", "LunarLander-v3"): (242.119, 31.823), ("ppo", "BipedalWalker-v3"): (213.299, 129.490),
    ("trpo", "Acrobot-v1"): (-83.114, 18.648), ("trpo", "LunarLander-v3"): (133.166, 112.173),
    ("dqn", "Acrobot-v1"): (-76.639, 11.752), ("dqn", "MountainCar-v0"): (-100.849, 9.925),
    ("dqn", "LunarLander-v3"): (154.382, 79.241),
}
ENVS = ("Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1", "LunarLander-v3",
        "BipedalWalker-v3")
DISCRETE = {"Acrobot-v1", "MountainCar-v0", "LunarLander-v3"}


def bar(algo: str, env_id: str) -> tuple[float, str]:
    """(the greedy mean that counts as learned, where it comes from)."""
    if (algo, env_id) in ZOO_SCORE:
        mean, std = ZOO_SCORE[algo, env_id]
        return mean - std, f"zoo {algo}: {mean:.1f} ± {std:.1f}"
    bars = {a: m - s for (a, e), (m, s) in ZOO_SCORE.items() if e == env_id}
    lowest = min(bars, key=bars.get)
    return bars[lowest], f"no zoo {algo} agent; {lowest}'s bar"


def pairs(algos, envs) -> list[tuple[str, str]]:
    return [(a, e) for a in algos for e in envs if e in ZOO_BUDGET[a] and (a != "dqn" or e in DISCRETE)]


def run(algo: str, env_id: str, seed: int) -> dict:
    steps = ZOO_BUDGET[algo][env_id]
    r = run_training(["--algo", algo, "--env", env_id, "--total-steps", str(steps), "--eval-every", str(steps),
                      "--eval-episodes", str(EVAL_EPISODES)], seed)
    return {"algo": algo, "env_id": env_id, "seed": seed, "budget": steps, "eval_mean": r["eval_reward"],
            "reward_100": r["reward_100"], "env_steps": r["env_steps"], "train_s": r["train_seconds"],
            "date": machine()["date"]}


def table(results: list[dict], seeds) -> str:
    lines = ["| `--algo` | env | budget (zoo's) | greedy mean, 20 episodes | learned bar (source) | learned | "
             "training s |", "|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in results:
        if r["seed"] in seeds:
            groups.setdefault((r["algo"], r["env_id"]), []).append(r)
    for (algo, env_id), runs in groups.items():
        threshold, source = bar(algo, env_id)
        means = [r["eval_mean"] for r in runs]
        learned = sum(m >= threshold for m in means)
        shown = ", ".join(f"{m:.1f}" for m in means)
        lines.append(f"| {algo} | {env_id} | {runs[0]['budget']:,} | {shown} | ≥ {threshold:.1f} ({source}) | "
                     f"{'yes' if learned == len(runs) else 'no' if learned == 0 else f'{learned}/{len(runs)}'} | "
                     f"{statistics.median(r['train_s'] for r in runs):.0f} |")
    dates = sorted({r.get("date", "?") for r in results if r["seed"] in seeds})
    lines.append(f"\nSeeds {', '.join(map(str, seeds))} (a row lists the seeds it was run with, greedy means in seed "
                 f"order; learned: by all of them, k/n, or none); {machine()['cpus']} cores, "
                 f"{' to '.join(dates[::max(1, len(dates) - 1)])}; `python benchmarks/no_preset.py --readme`.")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algos", nargs="+", default=["ppo", "a2c", "trpo", "npg", "reinforce", "dqn"],
                   choices=sorted(ZOO_BUDGET))
    p.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--resume", action="store_true", help="keep the JSON's runs and add the missing ones")
    p.add_argument("--json", default="no_preset.json", help="results/ file to keep the runs in (two processes "
                                                            "on disjoint --algos can run side by side in two files)")
    p.add_argument("--merge", nargs="+", default=[], metavar="JSON",
                   help="first add the runs of these results/ files (from side-by-side processes)")
    p.add_argument("--table-only", action="store_true",
                   help="run nothing: the table of the runs in --json (with --resume) and --merge, every seed they hold")
    p.add_argument("--readme", action="store_true")
    args = p.parse_args()
    results = []
    for name in ([args.json] if args.resume else []) + args.merge:
        path = os.path.join(RESULTS, name)
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            results += [{"date": saved["machine"]["date"], **r} for r in saved["runs"] if r not in results]
    done = {(r["algo"], r["env_id"], r["seed"]) for r in results}
    if args.table_only:
        args.seeds = sorted({r["seed"] for r in results})
    for seed in [] if args.table_only else args.seeds:
        for algo, env_id in pairs(args.algos, args.envs):
            if (algo, env_id, seed) in done:
                continue
            r = run(algo, env_id, seed)
            results.append(r)
            save(args.json, {"machine": machine(), "runs": results})
            print(json.dumps(r), flush=True)
    save(args.json, {"machine": machine(), "runs": results})
    order = {(a, e): i for i, (a, e) in enumerate(pairs(args.algos, ENVS))}
    results.sort(key=lambda r: (order.get((r["algo"], r["env_id"]), len(order)), r["seed"]))
    text = table(results, args.seeds)
    print(text)
    if args.readme:
        write_readme_section("no-preset", text)


if __name__ == "__main__":
    main()
