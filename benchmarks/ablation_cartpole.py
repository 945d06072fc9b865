"""Ablation of the policy-gradient family on CartPole-v1: returns x baselines.

    python benchmarks/ablation_cartpole.py [--seeds 0 1 2] [--docs]

For returns in {total (G_0 for every step), reward_to_go} and baselines in {none, mean, linear,
critic}, on the `cartpole-reinforce` preset with advantage standardisation OFF (standardising is
itself a batch baseline and would hide the comparison): env steps to reward_100 >= 475 (within
the budget), final reward_100, and the median over the run of grad_var, the variance of the
per-episode gradient estimates. Writes a table, results/ablation_cartpole.json and the learning
curves docs/results/img/ablation_cartpole.png (mean and min-max over seeds).
"""
import argparse
import itertools
import statistics

import numpy as np
from common import machine, med_range, plot_path, run_training, save, write_docs_section

RETURNS = ("total", "reward_to_go")
BASELINES = ("none", "mean", "linear", "critic")


def plot(rows, budget, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, budget, 200)
    fig, axes = plt.subplots(1, len(RETURNS), figsize=(12, 4.2), sharey=True)
    for ax, kind in zip(axes, RETURNS):
        for row in (r for r in rows if r["returns"] == kind):
            curves = []
            for run in row["runs"]:
                pts = np.array(run["curves"].get("reward_100", [[0, np.nan]]))
                # a run that stopped at 475 stays there for the rest of the grid
                curves.append(np.interp(grid, pts[:, 0], pts[:, 1], left=np.nan, right=pts[-1, 1]))
            curves = np.array(curves)
            mean = np.nanmean(curves, 0)
            line, = ax.plot(grid, mean, label=row["baseline"])
            ax.fill_between(grid, np.nanmin(curves, 0), np.nanmax(curves, 0), color=line.get_color(), alpha=0.15)
        ax.set_title(f"returns = {kind}")
        ax.set_xlabel("env steps")
        ax.axhline(475, color="grey", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("reward_100 (mean, min–max over seeds)")
    axes[0].legend(title="baseline")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--total-steps", type=int, default=400_000)
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    rows = []
    for kind, baseline in itertools.product(RETURNS, BASELINES):
        runs = []
        for seed in args.seeds:
            r = run_training(["--preset", "cartpole-reinforce", "--returns", kind, "--baseline", baseline,
                              "--normalize", "false", "--lr", "0.01", "--total-steps", str(args.total_steps),
                              "--grad-var-every", "4"], seed, curves=("reward_100", "grad_var"))
            r["grad_var_median"] = statistics.median(v for _, v in r["curves"].get("grad_var", [[0, float("nan")]]))
            print(f"{kind:>12} {baseline:>6} seed {seed}: solved={r['solved']} steps={r['env_steps']:,} "
                  f"reward_100={r['reward_100']:.1f} grad_var={r['grad_var_median']:.3g}", flush=True)
            runs.append(r)
        rows.append({"returns": kind, "baseline": baseline, "runs": runs})
    lines = ["| returns | baseline | solved | env steps to 475 | final reward_100 | grad variance (median over run) |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        runs = row["runs"]
        steps = [r["env_steps"] if r["solved"] else float("inf") for r in runs]
        med = statistics.median(steps)
        lines.append(f"| {row['returns']} | {row['baseline']} | {sum(r['solved'] for r in runs)}/{len(runs)} "
                     f"| {'>' + format(args.total_steps, ',') if med == float('inf') else format(int(med), ',')} "
                     f"| {med_range(r['reward_100'] for r in runs)} "
                     f"| {med_range((r['grad_var_median'] for r in runs), '{:.3g}')} |")
    png = plot_path("ablation_cartpole.png")
    plot(rows, args.total_steps, png)
    m = machine()
    table = "\n".join(lines) + (
        f"\n\nMedians [min–max] over seeds {', '.join(map(str, args.seeds))}; `cartpole-reinforce` with "
        f"`--normalize false --lr 0.01`, budget {args.total_steps:,} env steps; env steps to 475 is the median "
        f"(a run that never got there counts as infinite). {m['date']}, "
        "`python benchmarks/ablation_cartpole.py --docs`.\n\n"
        "![ablation learning curves](img/ablation_cartpole.png)")
    print(table)
    for row in rows:
        for r in row["runs"]:
            r["curves"] = {k: v[:: max(1, len(v) // 300)] for k, v in r["curves"].items()}
    save("ablation_cartpole.json", {"machine": m, "rows": rows})
    if args.docs:
        write_docs_section("ablation", table)


if __name__ == "__main__":
    main()
