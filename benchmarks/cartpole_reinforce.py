"""Time REINFORCE to reward_100 >= 475 on CartPole-v1: wall seconds and env steps, per seed.

    python benchmarks/cartpole_reinforce.py [--seeds 0 1 2] [--preset cartpole-reinforce] [--docs]

Runs the seeds one after another (never two trainings at once on a 2-core machine), prints a
table with median and range, saves benchmarks/results/cartpole_reinforce.json, and with --docs
rewrites its results table in docs/results/.
"""
import argparse

from common import footer, publish, run_presets, stats_cells


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--preset", nargs="+", default=["cartpole-reinforce", "book-cartpole-reinforce"])
    p.add_argument("--extra", default="", help="extra train.py flags, quoted")
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    rows = run_presets(args.preset, args.seeds, args.extra, lambda r: (
        f"solved={r['solved']} {r['env_steps']:,} steps, train {r['train_seconds']:.2f} s, "
        f"process {r['process_wall_s']:.1f} s, {r['steps_per_s']:,.0f} steps/s"))
    lines = ["| preset | solved | train s to 475 | process wall s | env steps to 475 | env steps/s |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        runs = row["runs"]
        lines.append(f"| `{row['preset']}` | {sum(r['solved'] for r in runs)}/{len(runs)} | "
                     + stats_cells(runs, "train_seconds", "process_wall_s", "env_steps", "steps_per_s") + " |")
    table = "\n".join(lines) + "\n\n" + footer(args.seeds, "cartpole_reinforce.py")
    publish("cartpole-reinforce", table, "cartpole_reinforce.json", {"rows": rows}, args.docs)


if __name__ == "__main__":
    main()
