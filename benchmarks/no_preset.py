"""The fallback defaults on envs without a preset: does `train.py --algo A --env E` learn within the zoo's budget?

    python benchmarks/no_preset.py [--algos ppo a2c trpo npg reinforce dqn] [--envs Acrobot-v1 ...] [--seeds 0]
                                   [--resume] [--docs]

Each run is `train.py --algo A --env E --total-steps B --seed S` with no other setting (the env has no
preset for A, so every hyperparameter is the algorithm's dataclass default), then one greedy evaluation of
20 episodes at the end. B is rl-baselines3-zoo's `n_timesteps` for the algorithm on the env
(hyperparams/{a2c,ppo,trpo,dqn}.yml); REINFORCE, which the zoo lacks, gets A2C's budgets, and NPG TRPO's.

"Learned" means: the greedy mean is at least the bar, the mean minus one standard deviation of the zoo's
own tuned agent for that algorithm (its benchmark.md, one trained agent evaluated deterministically over
~150k steps), i.e. within the spread of what the zoo's per-env tuning reaches in the same budget. Where
the zoo has no agent for the pair, the bar is the lowest of that env's bars. The zoo tuned each entry for
its env; tfpg's numbers here come from one set of defaults for every env.

With --peers the same pairs and seeds run Stable-Baselines3 / sb3-contrib with the zoo's own tuned entry for
the env (`../shared/peers/sb3_zoo_run.py`, same budget, greedy mean over 20 episodes) into
results/no_preset_peers.json, and --docs writes a second table beside tfpg's runs of those seeds: how
often the zoo's tuning itself clears the bar on seeds other than the one its benchmark agent came from.

With --default-budget the pairs whose zoo budget is under train.py's default --total-steps run with that
default instead (`train.py --algo A --env E`, nothing else) into results/no_preset_default_budget.json and
their own table, against the same bars: does training past the zoo's budget keep what it learned?
That is the run a user gets without --total-steps.

The JSON goes to results/no_preset.json after every run (--resume skips the pairs and seeds in it);
--docs writes the table (docs/results/no-preset.md). Runs go one at a time in a process, so a pair's seconds are indicative
only (two processes on disjoint --algos, each with its own --json, halve the wall time; --merge joins
them for the table).
"""
import argparse
import dataclasses
import functools
import json
import os
import statistics
import sys

from advanced_pg import peers_python, run_sb3, tfpg_preset
from common import RESULTS, ROOT, machine, run_training, save, write_docs_section

EVAL_EPISODES = 20
# rl-baselines3-zoo hyperparams/*.yml n_timesteps (rl-zoo3 2.x; gymnasium ids)
ZOO_BUDGET = {
    "ppo": {"Acrobot-v1": 1_000_000, "MountainCar-v0": 1_000_000, "MountainCarContinuous-v0": 20_000,
            "Pendulum-v1": 100_000, "LunarLander-v3": 1_000_000, "BipedalWalker-v3": 5_000_000},
    "a2c": {"Acrobot-v1": 500_000, "MountainCar-v0": 1_000_000, "MountainCarContinuous-v0": 100_000,
            "Pendulum-v1": 1_000_000, "LunarLander-v3": 200_000, "BipedalWalker-v3": 5_000_000},
    "trpo": {"CartPole-v1": 100_000, "Acrobot-v1": 100_000, "MountainCar-v0": 100_000,
             "MountainCarContinuous-v0": 50_000, "Pendulum-v1": 100_000, "LunarLander-v3": 200_000,
             "LunarLanderContinuous-v3": 100_000, "BipedalWalker-v3": 1_000_000,
             "BipedalWalkerHardcore-v3": 10_000_000},
    "dqn": {"Acrobot-v1": 100_000, "MountainCar-v0": 120_000, "LunarLander-v3": 100_000},
}
ZOO_BUDGET["npg"] = ZOO_BUDGET["trpo"]
ZOO_BUDGET["reinforce"] = ZOO_BUDGET["a2c"]
# rl-baselines3-zoo benchmark.md (commit 0088472 of DLR-RM/rl-baselines3-zoo): (mean, std) of the zoo's trained
# agent, under the -v2 ids of its table for LunarLander
ZOO_SCORE = {
    ("a2c", "Acrobot-v1"): (-83.353, 17.213), ("a2c", "MountainCar-v0"): (-111.263, 24.087),
    ("a2c", "MountainCarContinuous-v0"): (91.166, 0.255), ("a2c", "Pendulum-v1"): (-162.965, 103.210),
    ("a2c", "LunarLander-v3"): (155.751, 80.419), ("a2c", "BipedalWalker-v3"): (299.754, 23.459),
    ("ppo", "Acrobot-v1"): (-73.506, 18.201), ("ppo", "MountainCar-v0"): (-110.423, 19.473),
    ("ppo", "MountainCarContinuous-v0"): (88.343, 2.572), ("ppo", "Pendulum-v1"): (-172.225, 104.159),
    ("ppo", "LunarLander-v3"): (242.119, 31.823), ("ppo", "BipedalWalker-v3"): (213.299, 129.490),
    ("trpo", "CartPole-v1"): (500.0, 0.0), ("trpo", "Acrobot-v1"): (-83.114, 18.648),
    ("trpo", "MountainCar-v0"): (-107.278, 13.231), ("trpo", "MountainCarContinuous-v0"): (92.489, 0.355),
    ("trpo", "Pendulum-v1"): (-174.631, 127.577), ("trpo", "LunarLander-v3"): (133.166, 112.173),
    ("trpo", "LunarLanderContinuous-v3"): (262.387, 21.428), ("trpo", "BipedalWalker-v3"): (182.339, 145.570),
    ("dqn", "Acrobot-v1"): (-76.639, 11.752), ("dqn", "MountainCar-v0"): (-100.849, 9.925),
    ("dqn", "LunarLander-v3"): (154.382, 79.241),
    ("a2c", "BipedalWalkerHardcore-v3"): (96.171, 122.943), ("ppo", "BipedalWalkerHardcore-v3"): (122.374, 117.605),
}
# BipedalWalkerHardcore-v3 runs for TRPO and NPG only: the zoo's PPO budget there is 100M steps and A2C's 200M
# (hyperparams/{ppo,a2c}.yml), 16 and 24 hours at their BipedalWalker-v3 speed on 2 cores; their scores above
# give the env's bars.
# CartPole-v1 and LunarLanderContinuous-v3 count only for an algorithm without a preset there (NPG).
ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1", "LunarLander-v3",
        "LunarLanderContinuous-v3", "BipedalWalker-v3", "BipedalWalkerHardcore-v3")
ALGOS = ("ppo", "a2c", "trpo", "npg", "reinforce", "dqn")   # the table's order
DISCRETE = {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3"}


def bar(algo: str, env_id: str) -> tuple[float, str]:
    """(the greedy mean that counts as learned, where it comes from)."""
    if (algo, env_id) in ZOO_SCORE:
        mean, std = ZOO_SCORE[algo, env_id]
        return mean - std, f"zoo {algo}: {mean:.1f} ± {std:.1f}"
    bars = {a: m - s for (a, e), (m, s) in ZOO_SCORE.items() if e == env_id}
    lowest = min(bars, key=bars.get)
    return bars[lowest], f"no zoo {algo} agent; {lowest}'s bar"


def pairs(algos, envs) -> list[tuple[str, str]]:
    """The (algo, env) pairs where `train.py --algo A --env E` runs the fallback defaults (no preset)."""
    return [(a, e) for a in algos for e in envs if e in ZOO_BUDGET[a] and (a != "dqn" or e in DISCRETE)
            and tfpg_preset(a, e) is None]


@functools.cache   # read once: each call would put ROOT on sys.path again
def default_total_steps() -> int:
    """train.py's --total-steps when it is not given."""
    sys.path.insert(0, ROOT)
    from tfpg.config.run import RunConfig

    return next(f.default for f in dataclasses.fields(RunConfig) if f.name == "total_steps")


def run(algo: str, env_id: str, seed: int, default_budget: bool = False) -> dict:
    steps = default_total_steps() if default_budget else ZOO_BUDGET[algo][env_id]
    budget_flags = [] if default_budget else ["--total-steps", str(steps)]
    r = run_training(["--algo", algo, "--env", env_id, *budget_flags, "--eval-every", str(steps),
                      "--eval-episodes", str(EVAL_EPISODES)], seed)
    return {"algo": algo, "env_id": env_id, "seed": seed, "budget": steps, "eval_mean": r["eval_reward"],
            "reward_100": r["reward_100"], "env_steps": r["env_steps"], "train_s": r["train_seconds"],
            "date": machine()["date"]}


def run_peer(python: str, algo: str, env_id: str, seed: int) -> dict:
    steps = ZOO_BUDGET[algo][env_id]
    r = run_sb3(python, algo, env_id, seed, steps, torch_threads=1)   # 2 cores: two threads thrash beside tfpg
    return {"algo": algo, "env_id": env_id, "seed": seed, "budget": steps, "eval_mean": r["eval_mean"],
            "env_steps": r["env_steps"], "train_s": r["train_s"], "system": r["system"],
            "hparam_source": r["hparam_source"], "date": machine()["date"]}


def date_span(dates) -> str:
    """"D" or "first to last" of the run dates."""
    dates = sorted(set(dates))
    return " to ".join(dates[::max(1, len(dates) - 1)])


def learned_cell(means: list[float], threshold: float) -> str:
    learned = sum(m >= threshold for m in means)
    return "yes" if learned == len(means) else "no" if learned == 0 else f"{learned}/{len(means)}"


def peers_table(peers: list[dict], ours: list[dict]) -> str:
    """tfpg's fallback beside SB3 with the zoo's tuned entry, on the same seeds of each pair SB3 ran."""
    lines = ["| `--algo` | env | budget | seeds | tfpg fallback: greedy means | learned | SB3 + zoo's tuned entry: "
             "greedy means | learned | bar |", "|---|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in peers:
        groups.setdefault((r["algo"], r["env_id"]), []).append(r)
    for (algo, env_id), runs in groups.items():
        runs.sort(key=lambda r: r["seed"])
        seeds = [r["seed"] for r in runs]
        by_seed = {r["seed"]: r["eval_mean"] for r in ours if (r["algo"], r["env_id"]) == (algo, env_id)}
        threshold, _ = bar(algo, env_id)
        tfpg_means = [by_seed[s] for s in seeds if s in by_seed]
        sb3_means = [r["eval_mean"] for r in runs]
        lines.append(f"| {algo} | {env_id} | {runs[0]['budget']:,} | {', '.join(map(str, seeds))} | "
                     f"{', '.join(f'{m:.1f}' for m in tfpg_means) or '–'} | "
                     f"{learned_cell(tfpg_means, threshold) if tfpg_means else '–'} | "
                     f"{', '.join(f'{m:.1f}' for m in sb3_means)} | {learned_cell(sb3_means, threshold)} | "
                     f"≥ {threshold:.1f} |")
    system = peers[0]["system"] if peers else "?"
    lines.append(f"\n{system} (sb3-contrib for TRPO) with rl-zoo3's hyperparams/<algo>.yml entry for the env, "
                 f"the zoo's budget, greedy mean over {EVAL_EPISODES} episodes; tfpg without a preset, same seeds "
                 f"and budget (the table above). {machine()['cpus']} cores, "
                 f"{date_span(r['date'] for r in peers)}; "
                 "`python benchmarks/no_preset.py --peers --algos A --envs E --seeds 0 1 2 --docs`.")
    return "\n".join(lines)


def table(results: list[dict], seeds, default_budget: bool = False) -> str:
    budget_title = "budget" if default_budget else "budget (zoo's)"
    lines = [f"| `--algo` | env | {budget_title} | greedy mean, 20 episodes | learned bar (source) | learned | "
             "training s |", "|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in results:
        if r["seed"] in seeds:
            groups.setdefault((r["algo"], r["env_id"]), []).append(r)
    for (algo, env_id), runs in groups.items():
        threshold, source = bar(algo, env_id)
        means = [r["eval_mean"] for r in runs]
        shown = ", ".join(f"{m:.1f}" for m in means)
        budget = f"{runs[0]['budget']:,}" + (f" (zoo's {ZOO_BUDGET[algo][env_id]:,})" if default_budget else "")
        lines.append(f"| {algo} | {env_id} | {budget} | {shown} | ≥ {threshold:.1f} ({source}) | "
                     f"{learned_cell(means, threshold)} | {statistics.median(r['train_s'] for r in runs):.0f} |")
    lines.append(f"\nSeeds {', '.join(map(str, seeds))} (a row lists the seeds it was run with, greedy means in seed "
                 f"order; learned: by all of them, k/n, or none); {machine()['cpus']} cores, "
                 f"{date_span(r.get('date', '?') for r in results if r['seed'] in seeds)}; "
                 f"`python benchmarks/no_preset.py {'--default-budget ' if default_budget else ''}--docs`.")
    return "\n".join(lines)


def load(names) -> list[dict]:
    results = []
    for name in names:
        path = os.path.join(RESULTS, name)
        if os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            results += [{"date": saved["machine"]["date"], **r} for r in saved["runs"] if r not in results]
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=sorted(ZOO_BUDGET))
    p.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--resume", action="store_true", help="keep the JSON's runs and add the missing ones")
    p.add_argument("--json", default=None, help="results/ file to keep the runs in (default no_preset.json, with "
                                                "--peers no_preset_peers.json; two processes on disjoint --algos "
                                                "can run side by side in two files)")
    p.add_argument("--merge", nargs="+", default=[], metavar="JSON",
                   help="first add the runs of these results/ files (from side-by-side processes)")
    p.add_argument("--table-only", action="store_true",
                   help="run nothing: the table of the runs in --json (with --resume) and --merge, every seed they hold")
    p.add_argument("--peers", action="store_true",
                   help="run SB3 with the zoo's tuned entry instead of tfpg (pairs the zoo has an agent for)")
    p.add_argument("--peers-venv", default=os.environ.get("PEERS_VENV", os.path.expanduser("~/.cache/tfpg-peers-venv")))
    p.add_argument("--default-budget", action="store_true",
                   help="the pairs whose zoo budget is under train.py's default --total-steps, run with that default")
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    if args.peers and args.default_budget:
        p.error("--peers runs the zoo's budgets; drop --default-budget")
    args.json = args.json or ("no_preset_peers.json" if args.peers else
                              "no_preset_default_budget.json" if args.default_budget else "no_preset.json")
    results = load(([args.json] if args.resume or args.table_only else []) + args.merge)
    done = {(r["algo"], r["env_id"], r["seed"]) for r in results}
    if args.table_only:
        args.seeds = sorted({r["seed"] for r in results})
    python = peers_python(args.peers_venv) if args.peers and not args.table_only else None
    for seed in [] if args.table_only else args.seeds:
        for algo, env_id in pairs(args.algos, args.envs):
            if (algo, env_id, seed) in done or (args.peers and (algo, env_id) not in ZOO_SCORE):
                continue
            if args.default_budget and ZOO_BUDGET[algo][env_id] >= default_total_steps():
                continue
            r = run_peer(python, algo, env_id, seed) if args.peers else run(algo, env_id, seed, args.default_budget)
            results.append(r)
            save(args.json, {"machine": machine(), "runs": results})
            print(json.dumps(r), flush=True)
    save(args.json, {"machine": machine(), "runs": results})
    order = {(a, e): i for i, (a, e) in enumerate(pairs(ALGOS, ENVS))}
    results.sort(key=lambda r: (order.get((r["algo"], r["env_id"]), len(order)), r["seed"]))
    text = (peers_table(results, load(["no_preset.json"])) if args.peers else
            table(results, args.seeds, args.default_budget))
    print(text)
    if args.docs:
        write_docs_section("no-preset-peers" if args.peers else "no-preset-default-budget" if args.default_budget
                             else "no-preset", text)


if __name__ == "__main__":
    main()
