"""Learning curve of a long Atari run, from its TensorBoard events, labelled with the frames it covers.

    python benchmarks/atari_long_run.py RUN_DIR [--docs]

Plots the real game score (`reward`, each finished episode's last value per log point, and
`reward_100`) and epsilon against env frames (agent steps x 4, the frame skip), writes
docs/results/img/atari_long_run.png and results/atari_long_run.json, and with --docs the section
`atari-long-run` of docs/results/atari.md. Nothing here trains: the run is made with train.py (see that page).
"""
from __future__ import annotations

import argparse
import json
import os

from common import plot_path, publish, read_scalars

FRAME_SKIP = 4


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    with open(os.path.join(args.run_dir, "config.json")) as f:
        config = json.load(f)
    curves = read_scalars(args.run_dir, ("reward", "reward_100", "episodes", "epsilon", "td_loss", "q_mean",
                                         "steps_per_second"))
    if not curves.get("reward_100"):
        raise SystemExit(f"{args.run_dir} has no reward_100 events yet")
    last_step = curves["reward_100"][-1][0]
    best = max(v for _, v in curves["reward_100"])
    episodes = int(curves["episodes"][-1][1]) if curves.get("episodes") else 0

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2))
    for tag, style in (("reward", dict(alpha=0.3, lw=0.8)), ("reward_100", dict(lw=2))):
        pts = curves[tag]
        ax.plot([s * FRAME_SKIP / 1e6 for s, _ in pts], [v for _, v in pts], label=tag, **style)
    ax.set_xlabel("env frames (millions; agent steps x 4)")
    ax.set_ylabel("game score (unclipped)")
    ax.grid(alpha=0.3)
    if curves.get("epsilon"):
        ax2 = ax.twinx()
        ax2.plot([s * FRAME_SKIP / 1e6 for s, _ in curves["epsilon"]], [v for _, v in curves["epsilon"]],
                 color="gray", ls="--", lw=1, label="epsilon")
        ax2.set_ylabel("epsilon")
        ax2.set_ylim(0, 1.05)
    ax.legend(loc="upper left")
    ax.set_title(f"{config['env_id']}, {config['algo']}, {last_step * FRAME_SKIP / 1e6:.2f}M frames "
                 f"of the preset's {config['total_steps'] * FRAME_SKIP / 1e6:.0f}M")
    fig.tight_layout()
    fig.savefig(plot_path("atari_long_run.png"), dpi=110)

    sps = [v for _, v in curves.get("steps_per_second", [])]
    # each process writes its own events file, so more than one means the run was resumed
    resumes = sum(".tfevents." in name for name in os.listdir(args.run_dir)) - 1
    resumed = (f"Interrupted and resumed {resumes} time(s) with `--resume`, from the last 100k-step checkpoint; "
               "the replay buffer is not checkpointed in this preset, so it was refilled after each resume. "
               if resumes > 0 else "")
    text = (f"`{config['env_id']}`, `--algo {config['algo']}` with the `zoo-dqn-breakout` settings, seed {config['seed']}: "
            f"**{last_step:,} agent steps = {last_step * FRAME_SKIP / 1e6:.2f}M frames** of the "
            f"{config['total_steps'] * FRAME_SKIP / 1e6:.0f}M the preset budgets, {episodes:,} episodes; "
            f"`reward_100` (real score) at the end {curves['reward_100'][-1][1]:.1f}, best {best:.1f}; "
            f"ε at the end {curves['epsilon'][-1][1]:.2f}. "
            + resumed
            + (f"Training speed as logged: {sps[-1]:,.0f} agent steps/s (at niceness 19 beside other work). "
               if sps else "")
            + "A partial run, not a trained agent: the published DQN numbers come after 10M agent steps (40M frames)."
            + "\n\n![DQN Breakout long run](img/atari_long_run.png)")
    publish("atari-long-run", text, "atari_long_run.json", {"config": config, "curves": curves}, args.docs)


if __name__ == "__main__":
    main()
