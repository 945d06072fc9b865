"""Run the peer REINFORCE (a PyTorch port of the book's script, ../shared/peers/book_reinforce.py)
beside tfpg, on the same seeds, so that the docs' speed comparison is a side-by-side ratio.

    PEERS_VENV=~/.cache/tfpg-peers-venv python benchmarks/peers_cartpole.py [--seeds 0 1 2] [--docs]

The peer needs its own venv with torch (see ../shared/peers/README.md); tfpg never imports it.
"""
import argparse
import json
import os
import statistics
import subprocess

from common import ROOT, machine, med_range, run_training, save, write_docs_section

PEERS = os.path.join(os.path.dirname(ROOT), "shared", "peers")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--peers-venv", default=os.environ.get("PEERS_VENV", os.path.expanduser("~/.cache/tfpg-peers-venv")))
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    python = os.path.join(args.peers_venv, "bin", "python")
    if not os.path.exists(python):
        raise SystemExit(f"no peers venv at {args.peers_venv}; create it as ../shared/peers/README.md says")
    book, ours = [], []
    for seed in args.seeds:  # alternate, so machine noise hits both alike
        proc = subprocess.run([python, os.path.join(PEERS, "book_reinforce.py"), "--seed", str(seed),
                               "--env", "CartPole-v1", "--stop", "475"], capture_output=True, text=True, check=True)
        hit = json.loads(proc.stdout.strip().splitlines()[-1])
        book.append(hit or {"train_wall_s": float("nan"), "env_steps": 0})
        r = run_training(["--preset", "cartpole-reinforce"], seed)
        ours.append({"train_wall_s": r["train_seconds"], "env_steps": r["env_steps"]})
        print(f"seed {seed}: book {book[-1]}  tfpg {ours[-1]}", flush=True)
    lines = ["| system | train s to 475 | env steps to 475 | env steps/s |", "|---|---|---|---|"]
    for name, rows in (("book REINFORCE, PyTorch (peer)", book), ("tfpg `cartpole-reinforce`", ours)):
        lines.append(f"| {name} | {med_range(r['train_wall_s'] for r in rows)} "
                     f"| {med_range((r['env_steps'] for r in rows), '{:,.0f}')} "
                     f"| {med_range((r['env_steps'] / r['train_wall_s'] for r in rows), '{:,.0f}')} |")
    ratio = statistics.median(r["train_wall_s"] for r in book) / statistics.median(r["train_wall_s"] for r in ours)
    m = machine()
    table = "\n".join(lines) + (f"\n\nMedian [min–max] over seeds {', '.join(map(str, args.seeds))}, run alternately "
                                f"in one session ({m['date']}, {m['cpus']} cores): tfpg reaches 475 {ratio:.1f}× faster "
                                "in training time. `python benchmarks/peers_cartpole.py --docs`.")
    print(table)
    save("peers_cartpole.json", {"machine": m, "book": book, "tfpg": ours})
    if args.docs:
        write_docs_section("cartpole-peers", table)


if __name__ == "__main__":
    main()
