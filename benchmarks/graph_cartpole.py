"""Time to reward_100 >= 475 on CartPole-v1 with --backend graph (K = 1, 8, 64 agents at once) against the
gymnasium path (preset cartpole-reinforce) and the PyTorch book-REINFORCE peer, in one session.

    python benchmarks/graph_cartpole.py [--seeds 0 1 2 3 4] [--agents 1 8 64] [--docs]
    python benchmarks/graph_cartpole.py --algo ppo [--seeds 0 1 2 3 4] [--agents 1 8] [--docs]

With --algo ppo: preset ppo-cartpole (the zoo's settings, 100k-step budget) with --backend gym and with
--backend graph per seed, then one graph run of K agents per K > 1; its own table (graph-cartpole-ppo).

Per seed, one after another (never two trainings at once): the peer, the gymnasium preset, the graph preset
with one agent, and that preset again with --intra-op-threads 1; then one run of K agents (seeds 0 ... K-1)
per K > 1. Each tfpg run is a fresh `train.py` process; compile seconds (the first call of the compiled
program: trace + XLA compile + that iteration and its logging) and
training seconds (after it, to the solve) are reported apart. For K > 1 an agent's time to 475 is the
training time of the whole K-agent program until that agent's reward_100 first reaches 475 (all agents
train together), and env steps/s counts every agent's steps. The peer needs its venv
(PEERS_VENV, default ~/.cache/tfpg-peers-venv; see ../shared/peers/README.md); without it its row says so.
"""
import argparse
import json
import os
import statistics
import subprocess
import time

from common import ROOT, footer, med_range, publish, run_training

PEERS = os.path.join(os.path.dirname(ROOT), "shared", "peers")
GRAPH = "cartpole-reinforce-graph"
ONE_THREAD = ["--intra-op-threads", "1"]   # the same preset with TensorFlow's intra-op pool cut to one thread


def run_peer(python: str, seed: int) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([python, os.path.join(PEERS, "book_reinforce.py"), "--seed", str(seed), "--env",
                           "CartPole-v1", "--stop", "475"], capture_output=True, text=True, check=True)
    hit = json.loads(proc.stdout.strip().splitlines()[-1]) or {"train_wall_s": float("nan"), "env_steps": 0}
    return {**hit, "process_wall_s": time.perf_counter() - t0}


def cells(values, fmt="{:.2f}") -> str:
    values = [v for v in values if v == v]   # drop NaN (unsolved)
    return med_range(values, fmt) if values else "—"


def single_runs(args, python) -> dict:
    rows = {"peer": [], "gym": [], "graph": [], "graph_1thread": []}
    for seed in args.seeds:   # alternate, so machine noise hits every system alike
        if python:
            rows["peer"].append(run_peer(python, seed))
        rows["gym"].append(run_training(["--preset", "cartpole-reinforce"], seed))
        rows["graph"].append(run_training(["--preset", GRAPH], seed))
        rows["graph_1thread"].append(run_training(["--preset", GRAPH, *ONE_THREAD], seed))
        print(f"seed {seed}: " + json.dumps({k: v[-1] if v else None for k, v in rows.items()}, default=str)[:600],
              flush=True)
    return rows


def multi_runs(agents) -> dict:
    runs = {}
    for k in agents:
        if k > 1:
            runs[k] = run_training(["--preset", GRAPH, "--num-seeds", str(k)], 0)
            print(f"K={k}: compile {runs[k]['compile_seconds']:.1f} s, train {runs[k]['train_seconds']:.2f} s, "
                  f"{runs[k]['steps_per_s']:,.0f} steps/s", flush=True)
    return runs


def table(args, python, rows, multi) -> str:
    head = ["| system | agents | solved | compile s | train s to 475 | env steps to 475 (per agent) | env steps/s "
            "| process wall s |", "|---|---|---|---|---|---|---|---|"]
    peer = rows["peer"]
    if python:
        head.append(f"| book REINFORCE, PyTorch (peer) | 1 | {sum(r['env_steps'] > 0 for r in peer)}/{len(peer)} | — "
                    f"| {cells(r['train_wall_s'] for r in peer)} | {cells((r['env_steps'] for r in peer), '{:,.0f}')} "
                    f"| {cells((r['env_steps'] / r['train_wall_s'] for r in peer), '{:,.0f}')} "
                    f"| {cells((r['process_wall_s'] for r in peer), '{:.1f}')} |")
    else:
        head.append("| book REINFORCE, PyTorch (peer) | 1 | not run: no peers venv | | | | | |")
    for name, runs in (("tfpg gym `cartpole-reinforce`", rows["gym"]), (f"tfpg graph `{GRAPH}`", rows["graph"]),
                       (f"tfpg graph `{GRAPH} {' '.join(ONE_THREAD)}`", rows.get("graph_1thread"))):
        if not runs:
            continue
        compile_cell = cells(r["compile_seconds"] for r in runs) if "compile_seconds" in runs[0] else "—"
        head.append(f"| {name} | 1 | {sum(r['solved'] for r in runs)}/{len(runs)} | {compile_cell} "
                    f"| {cells(r['train_seconds'] for r in runs)} | {cells((r['env_steps'] for r in runs), '{:,.0f}')} "
                    f"| {cells((r['steps_per_s'] for r in runs), '{:,.0f}')} "
                    f"| {cells((r['process_wall_s'] for r in runs), '{:.1f}')} |")
    head += [k_agent_row(f"{GRAPH} --num-seeds {k}", k, run) for k, run in multi.items()]
    return "\n".join(head)


def k_agent_row(command: str, k: int, run: dict) -> str:
    """One table row for a run of K agents in one program: per-agent medians over the agents that solved."""
    solved = [a for a in run["per_agent"] if a["solved_env_steps"] > 0]
    return (f"| tfpg graph `{command}` | {k} | {len(solved)}/{k} "
            f"| {run['compile_seconds']:.1f} | {cells(a['solved_seconds'] for a in solved)} "
            f"(all: {run['train_seconds']:.2f}) | {cells((a['solved_env_steps'] for a in solved), '{:,.0f}')} "
            f"| {run['steps_per_s']:,.0f} | {run['process_wall_s']:.1f} |")


def ppo_table(rows, multi) -> str:
    """The PPO rows: preset ppo-cartpole on each backend per seed, and the K-agent graph runs."""
    head = ["| system | agents | solved | compile s | train s to 475 | env steps to 475 (per agent) | env steps/s "
            "| process wall s |", "|---|---|---|---|---|---|---|---|"]
    for name, runs in (("tfpg gym `ppo-cartpole`", rows["gym"]), ("tfpg graph `ppo-cartpole --backend graph`",
                                                                  rows["graph"])):
        solved = [r for r in runs if r["solved"]]
        compile_cell = cells(r["compile_seconds"] for r in runs) if "compile_seconds" in runs[0] else "—"
        head.append(f"| {name} | 1 | {len(solved)}/{len(runs)} | {compile_cell} "
                    f"| {cells(r['train_seconds'] for r in solved)} | {cells((r['env_steps'] for r in solved), '{:,.0f}')} "
                    f"| {cells((r['steps_per_s'] for r in runs), '{:,.0f}')} "
                    f"| {cells((r['process_wall_s'] for r in runs), '{:.1f}')} |")
    head += [k_agent_row(f"ppo-cartpole --backend graph --num-seeds {k}", k, run) for k, run in multi.items()]
    return "\n".join(head)


def ppo_main(args) -> None:
    load_before = os.getloadavg()
    graph = ["--preset", "ppo-cartpole", "--backend", "graph"]
    rows = {"gym": [], "graph": []}
    for seed in args.seeds:   # alternate, so machine noise hits both backends alike
        rows["gym"].append(run_training(["--preset", "ppo-cartpole"], seed))
        rows["graph"].append(run_training(graph, seed))
        print(f"seed {seed}: " + json.dumps({k: v[-1] for k, v in rows.items()}, default=str)[:600], flush=True)
    multi = {k: run_training([*graph, "--num-seeds", str(k)], 0) for k in args.agents if k > 1}
    load_after = os.getloadavg()
    ratio = statistics.median(r["train_seconds"] for r in rows["gym"] if r["solved"]) / statistics.median(
        r["train_seconds"] for r in rows["graph"] if r["solved"])
    load = (f"; 1-min load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (the machine was shared)"
            f"{(' ' + args.note) if args.note else ''}")
    text = (ppo_table(rows, multi) + "\n\n" + footer(args.seeds, "graph_cartpole.py --algo ppo", load)
            + f" Median training time to 475 of the solved runs: gym / graph K=1 = {ratio:.1f}x.")
    publish("graph-cartpole-ppo", text, "graph_cartpole_ppo.json", {"rows": rows, "multi": multi}, args.docs)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--agents", type=int, nargs="+", default=None, help="default: 1 8 64 (reinforce), 1 8 (ppo)")
    p.add_argument("--peers-venv", default=os.environ.get("PEERS_VENV", os.path.expanduser("~/.cache/tfpg-peers-venv")))
    p.add_argument("--note", default="", help="a remark for the footer, e.g. the machine's load")
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    p.add_argument("--algo", choices=("reinforce", "ppo"), default="reinforce")
    args = p.parse_args()
    args.agents = args.agents or ([1, 8, 64] if args.algo == "reinforce" else [1, 8])
    if args.algo == "ppo":
        return ppo_main(args)
    python = os.path.join(args.peers_venv, "bin", "python")
    python = python if os.path.exists(python) else None
    load_before = os.getloadavg()
    rows = single_runs(args, python)
    multi = multi_runs(args.agents)
    load_after = os.getloadavg()
    ratio = ""
    if python and rows["peer"]:
        def median_train(runs, key="train_seconds"):
            return statistics.median(r[key] for r in runs)

        graph = median_train(rows["graph"])
        ratio = (f" Median training time to 475: peer / graph K=1 = {median_train(rows['peer'], 'train_wall_s') / graph:.0f}x, "
                 f"gym / graph K=1 = {median_train(rows['gym']) / graph:.1f}x.")
    load = (f"; 1-min load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (the machine was shared)"
            f"{(' ' + args.note) if args.note else ''}")
    text = table(args, python, rows, multi) + "\n\n" + footer(args.seeds, "graph_cartpole.py", load) + ratio
    publish("graph-cartpole", text, "graph_cartpole.json", {"rows": rows, "multi": multi}, args.docs)


if __name__ == "__main__":
    main()
