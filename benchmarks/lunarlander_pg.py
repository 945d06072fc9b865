"""Time the Gaussian PG preset to reward_100 >= 200 on LunarLanderContinuous-v3, per seed.

    python benchmarks/lunarlander_pg.py [--seeds 0 1] [--docs]

For each seed, one after another (never two trainings at once on a 2-core machine): the tuned
preset `lunarlander-pg` until reward_100 >= 200 (or its 1M-step budget), with the greedy
evaluation of the final policy (10 fixed-seed episodes); then the seed preset
`gaussian-pg-lunarlander` for the same number of env steps. Prints the table, saves
benchmarks/results/lunarlander_pg.json and a learning-curve PNG (docs/results/img/), and with --docs rewrites
the <!-- bench:lunarlander --> section of docs/results/.
"""
import argparse
import subprocess

from common import footer, plot_path, publish, run_training, stats_cells

TUNED, SEED = "lunarlander-pg", "gaussian-pg-lunarlander"


def other_load() -> str:
    """The busiest other processes right now (`top`), so a timing note can say if a core was taken."""
    lines = subprocess.run(["top", "-bn1"], capture_output=True, text=True).stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("PID"))
    busy = [line.split() for line in lines[header + 1:]]
    busy = [f"{p[-1]} {p[8]}%" for p in busy if len(p) > 8 and float(p[8].replace(",", ".")) >= 30]
    return ", ".join(busy) or "none"


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for row in rows:
        for r in row["runs"]:
            pts = r["curves"].get("reward_100", [])
            ax.plot([s for s, _ in pts], [v for _, v in pts], label=f"{row['preset']} seed {r['seed']}")
    ax.axhline(200, color="gray", ls="--", lw=1)
    ax.set_xlabel("env steps")
    ax.set_ylabel("reward_100")
    ax.set_title("LunarLanderContinuous-v3, Gaussian policy gradient")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--extra", default="", help="extra train.py flags for the tuned preset, quoted")
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    load_before = other_load()
    tuned, seed_runs = [], []
    for seed in args.seeds:
        r = run_training(["--preset", TUNED, *args.extra.split()], seed, curves=("reward_100", "eval/reward"))
        print(f"{TUNED} seed {seed}: solved={r['solved']} {r['env_steps']:,} steps, train {r['train_seconds']:.1f} s, "
              f"reward_100 {r['reward_100']:.1f}, greedy eval {r['eval_reward']:.1f}", flush=True)
        tuned.append(r)
        s = run_training(["--preset", SEED, "--total-steps", str(r["env_steps"])], seed, curves=("reward_100",))
        print(f"{SEED} seed {seed}: {s['env_steps']:,} steps, train {s['train_seconds']:.1f} s, "
              f"reward_100 {s['reward_100']:.1f}", flush=True)
        seed_runs.append(s)
    load_after = other_load()
    rows = [{"preset": TUNED, "runs": tuned}, {"preset": SEED, "runs": seed_runs}]
    plot(rows, plot_path("lunarlander_pg.png"))
    lines = ["| preset | reached 200 | env steps | train s | reward_100 at the end | greedy eval (10 ep.) |",
             "|---|---|---|---|---|---|",
             f"| `{TUNED}` | {sum(r['solved'] for r in tuned)}/{len(tuned)} | "
             + stats_cells(tuned, "env_steps", "train_seconds", "reward_100", "eval_reward") + " |",
             f"| `{SEED}` (same env steps) | {sum(r['solved'] for r in seed_runs)}/{len(seed_runs)} | "
             + stats_cells(seed_runs, "env_steps", "train_seconds", "reward_100") + " | — |"]
    table = ("\n".join(lines) + "\n\n"
             + footer(args.seeds, "lunarlander_pg.py", f"; other busy processes (top) before: {load_before}; "
                                                       f"after: {load_after}")
             + "\n\n![learning curves](img/lunarlander_pg.png)")
    publish("lunarlander", table, "lunarlander_pg.json", {"rows": rows}, args.docs)


if __name__ == "__main__":
    main()
