"""Time DQN to a greedy evaluation mean >= 475 on CartPole-v1: training seconds and env steps, per seed.

    python benchmarks/cartpole_dqn.py [--seeds 0 1 2] [--preset dqn-cartpole] [--docs]

The preset evaluates the greedy policy every few thousand env steps (10 episodes) and stops once
their mean reaches 475; training seconds include those evaluations. The training reward_100 at
that point is reported too: it runs with epsilon-greedy exploration and so understates the greedy
policy. Seeds run one after another (never two trainings at once on a 2-core machine); results go
to benchmarks/results/cartpole_dqn.json and, with --docs, into its table in docs/results/.
"""
import argparse

from common import footer, publish, run_presets, stats_cells


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--preset", nargs="+", default=["dqn-cartpole"])
    p.add_argument("--extra", default="", help="extra train.py flags, quoted")
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    rows = run_presets(args.preset, args.seeds, args.extra, lambda r: (
        f"solved={r['solved']} {r['env_steps']:,} steps, train {r['train_seconds']:.2f} s "
        f"(evaluations {r['eval_seconds']:.2f} s), process {r['process_wall_s']:.1f} s, eval {r['eval_reward']:.1f}, "
        f"reward_100 {r['reward_100']:.1f}, {r['steps_per_s']:,.0f} steps/s"))
    lines = ["| preset | solved | train s to greedy 475 | process wall s | env steps to greedy 475 "
             "| training reward_100 then | env steps/s |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        runs = row["runs"]
        lines.append(f"| `{row['preset']}` | {sum(r['solved'] for r in runs)}/{len(runs)} | "
                     + stats_cells(runs, "train_seconds", "process_wall_s", "env_steps", "reward_100", "steps_per_s")
                     + " |")
    table = "\n".join(lines) + "\n\n" + footer(args.seeds, "cartpole_dqn.py")
    publish("cartpole-dqn", table, "cartpole_dqn.json", {"rows": rows}, args.docs)


if __name__ == "__main__":
    main()
