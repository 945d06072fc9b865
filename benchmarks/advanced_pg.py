"""TRPO, PPO and A2C: tfpg beside Stable-Baselines3 / sb3-contrib with the rl-baselines3-zoo's
hyperparameters, seed by seed in one run, so that the speed comparison is a ratio measured on the
same machine at the same time.

    PEERS_VENV=~/.cache/tfpg-peers-venv python benchmarks/advanced_pg.py [--algos trpo ppo a2c] [--seeds 0 1 2] [--docs]
    python benchmarks/advanced_pg.py --env LunarLanderContinuous-v3 --algos ppo trpo --total-steps 1000000 --docs

CartPole-v1: both sides train within the zoo's budget for the algorithm (its `n_timesteps`); the
numbers are the env steps and training seconds until `reward_100` (mean of the last 100 training
episodes, a full window) first reaches 475. tfpg stops there; SB3 trains its whole budget and the
crossing is read from its episode log. Other envs (LunarLanderContinuous-v3): both train
`--total-steps` (default: the zoo's budget) and the number is the greedy (deterministic) evaluation
mean over 20 episodes at the end.

tfpg runs `train.py --algo A --preset P` with P the default preset of A on the env; the peer runs
`../shared/peers/sb3_zoo_run.py --algo A` in its own venv (see ../shared/peers/README.md; tfpg never
imports it). `--tfpg-algo reinforce` swaps tfpg's side for another algorithm (used to test this
harness before the algorithms existed). The JSON goes to results/advanced_pg_<env>.json, the
learning curves (reward_100 against env steps, both systems on the same axes) to
docs/results/img/advanced_pg_<env>.png; `--docs` also writes the table into docs/results/. The PNG needs matplotlib:
from tfpg's venv (the `dev` extra) or, failing that, from the peers venv.
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile

from common import RESULTS, ROOT, machine, med_range, plot_path, run_training, save, write_docs_section

PEERS = os.path.join(os.path.dirname(ROOT), "shared", "peers")
CARTPOLE_TARGET = 475.0
EVAL_EPISODES = 20
# The zoo's n_timesteps for CartPole-v1 (hyperparams/{a2c,ppo,trpo}.yml), the budget both sides get.
ZOO_CARTPOLE_BUDGET = {"a2c": 500_000, "ppo": 100_000, "trpo": 100_000}
# Zoo entries without lin_ schedules: nothing in them depends on the total budget, so a run cut short
# is the zoo's own run up to the cut (what --peer-steps-cap relies on).
NO_SCHEDULE = {("a2c", "CartPole-v1"), ("trpo", "CartPole-v1"), ("trpo", "LunarLanderContinuous-v3")}


def tfpg_preset(algo: str, env_id: str) -> str | None:
    """The preset `train.py --algo ALGO --env ENV` resolves to, or None (the fallback defaults)."""
    sys.path.insert(0, ROOT)
    from tfpg.algos.registry import default_preset

    preset = default_preset(algo, env_id)
    return None if preset is None else preset.name


def budget(algo: str, env_id: str, total_steps: int | None) -> int:
    if total_steps:
        return total_steps
    if env_id == "CartPole-v1":
        return ZOO_CARTPOLE_BUDGET[algo]
    raise SystemExit(f"give --total-steps for {env_id} (the zoo's budget for it is 1M steps or more)")


def run_tfpg(algo: str, env_id: str, seed: int, steps: int) -> dict:
    """One tfpg training: env steps and training seconds to 475 (CartPole) or the greedy mean after `steps`."""
    preset = tfpg_preset(algo, env_id)
    args = ["--algo", algo, "--env", env_id, "--total-steps", str(steps), *(["--preset", preset] if preset else [])]
    if env_id == "CartPole-v1":
        args += ["--stop-reward", str(CARTPOLE_TARGET), "--stop-on", "train"]
    else:   # train the whole budget, then one greedy evaluation at the end
        args += ["--stop-reward", "1e9", "--eval-every", str(steps), "--eval-episodes", str(EVAL_EPISODES)]
    r = run_training(args, seed, curves=("reward_100",))
    solved = env_id == "CartPole-v1" and r["solved"]
    return {"system": "tfpg", "algo": algo, "preset": preset, "seed": seed, "solved": solved,
            "env_steps": r["env_steps"], "train_s": r["train_seconds"], "steps_per_s": r["steps_per_s"],
            "to_target": {"env_steps": r["env_steps"], "train_s": r["train_seconds"]} if solved else None,
            "eval_mean": r.get("eval_reward") if r.get("evaluations") else None,
            "curve": r["curves"].get("reward_100", [])}


def run_sb3(python: str, algo: str, env_id: str, seed: int, steps: int, torch_threads: int = 0) -> dict:
    """One SB3 / sb3-contrib training with the zoo's settings, through ../shared/peers/sb3_zoo_run.py."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [python, os.path.join(PEERS, "sb3_zoo_run.py"), "--algo", algo, "--env", env_id, "--seed", str(seed),
               "--threshold", str(CARTPOLE_TARGET), "--eval-episodes", str(EVAL_EPISODES), "--max-seconds", "3600",
               "--torch-threads", str(torch_threads)]
        if env_id != "CartPole-v1" or steps != ZOO_CARTPOLE_BUDGET[algo]:
            cmd += ["--n-timesteps", str(steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PEERS_OUT": out}, cwd=out)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        name = f"sb3_{algo}_{env_id.replace('/', '_')}_s{seed}"
        with open(os.path.join(out, name + ".json")) as f:
            res = json.load(f)
        if res["timed_out"]:   # stopped at --max-seconds: not a run of the budget asked for
            raise RuntimeError(f"SB3 {algo} on {env_id} (seed {seed}) stopped at {res['train_env_steps']:,} of "
                               f"{steps:,} steps (the peers script's --max-seconds cap): rerun it on a less busy machine")
        with open(os.path.join(out, name + "_episodes.csv")) as f:
            episodes = [[float(x) for x in row] for row in csv.reader(line for line in f if not line.startswith("#"))]
    cross = res["cross_strict"] if env_id == "CartPole-v1" else None
    return {"system": res["system"], "algo": algo, "seed": seed, "solved": cross is not None,
            "env_steps": res["train_env_steps"], "train_s": res["train_wall_s"], "steps_per_s": res["steps_per_s"],
            "to_target": None if cross is None else {"env_steps": cross["env_steps"], "train_s": cross["wall_s"]},
            "eval_mean": res["eval_mean"], "hparam_source": res["hparam_source"], "torch_threads": res["torch_threads"],
            "curve": rolling_curve(episodes)}


def rolling_curve(episodes, window: int = 100, points: int = 400) -> list:
    """[[env_steps, mean of the last <= `window` episode returns]] at episode ends (thinned to ~`points`),
    the same quantity as tfpg's reward_100."""
    curve, returns = [], []
    for steps, _, ret, _ in episodes:
        returns.append(ret)
        curve.append([int(steps), statistics.fmean(returns[-window:])])
    stride = max(1, len(curve) // points)
    return curve[::stride] + curve[-1:]


def peers_python(venv: str) -> str:
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        raise SystemExit(f"no peers venv at {venv}; create it as ../shared/peers/README.md says (with sb3-contrib "
                         "and rl-zoo3)")
    return python


def to_target_cells(runs: list[dict]) -> str:
    """"solved n/N | env steps to target | train s to target" (median [range] over the solved runs)."""
    hits = [r["to_target"] for r in runs if r["to_target"]]
    if not hits:
        return f"0/{len(runs)} | – | –"
    return (f"{len(hits)}/{len(runs)} | {med_range((h['env_steps'] for h in hits), '{:,.0f}')} "
            f"| {med_range(h['train_s'] for h in hits)}")


def time_ratio(ours: list[dict], peer: list[dict], env_id: str) -> str:
    """median tfpg training seconds / median SB3 training seconds, for the same work."""
    def seconds(runs):
        if env_id == "CartPole-v1":
            return [r["to_target"]["train_s"] for r in runs if r["to_target"]]
        return [r["train_s"] for r in runs]

    a, b = seconds(ours), seconds(peer)
    steps = [r["env_steps"] for r in ours + peer]
    same_work = env_id == "CartPole-v1" or max(steps, default=0) < 1.05 * min(steps, default=0)
    if a and b and same_work:
        return f"{statistics.median(a) / statistics.median(b):.2f}"
    if ours and peer:   # one side never got there, or the budgets differ: compare seconds per env step instead
        per_step = statistics.median(r["steps_per_s"] for r in peer) / statistics.median(r["steps_per_s"] for r in ours)
        return f"{per_step:.2f} per env step"
    return "–"


def table(results: dict, env_id: str, seeds) -> str:
    cartpole = env_id == "CartPole-v1"
    head = ("| algo | system (settings) | budget | reached 475 | env steps to 475 | train s to 475 | env steps/s "
            "| tfpg / SB3 train s |" if cartpole else
            "| algo | system (settings) | budget | greedy return (20 ep.) | train s | env steps/s | tfpg / SB3 train s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for algo, row in results["algos"].items():
        for side in ("tfpg", "sb3"):
            runs = row[side]
            if not runs:
                continue
            who = (f"tfpg `{row['tfpg_preset']}`" if row["tfpg_preset"] else "tfpg (fallback defaults)") \
                if side == "tfpg" else f"{runs[0]['system']} (zoo)"
            ratio = time_ratio(row["tfpg"], row["sb3"], env_id) if side == "tfpg" else ""
            cells = to_target_cells(runs) if cartpole else (
                f"{med_range(r['eval_mean'] for r in runs)} | {med_range(r['train_s'] for r in runs)}")
            steps = row["budget"] if side == "tfpg" else row.get("sb3_budget", row["budget"])
            lines.append(f"| {row['tfpg_algo'] if side == 'tfpg' else algo} | {who} | {steps:,} | {cells} "
                         f"| {med_range((r['steps_per_s'] for r in runs), '{:,.0f}')} | {ratio} |")
    m = results["machine"]   # where the runs were made
    cut = [f"{algo.upper()} after {row['sb3_budget']:,}" for algo, row in results["algos"].items()
           if row.get("sb3_budget", row["budget"]) < row["budget"]]
    threads = sorted({r.get("torch_threads") for row in results["algos"].values() for r in row["sb3"]} - {None})
    if threads:
        lines.append(f"\nSB3 ran with {'/'.join(map(str, threads))} torch thread(s), tfpg with TensorFlow's defaults.")
    if cut:
        lines.append(f"\nSB3 stopped early ({', '.join(cut)} steps): their zoo entries have no schedules, so up to "
                     "there the run is the zoo's own.")
    # an algorithm added with --resume was measured in its own session: say when each was
    dates = {algo: row.get("date", results["machine"]["date"]) for algo, row in results["algos"].items()}
    when = (next(iter(dates.values())) if len(set(dates.values())) == 1
            else ", ".join(f"{algo.upper()} {date}" for algo, date in dates.items()))
    return "\n".join(lines) + (
        f"\n\nMedian [min–max] over the seeds run of {', '.join(map(str, seeds))}"
        f"{' (n/N: runs that reached 475 of the runs made)' if cartpole else ''}, tfpg and SB3 alternated seed by "
        f"seed in one session per algorithm ({when}, {m['cpus']} cores shared "
        "with other work, so seconds are noisy; env steps are not). "
        f"`python benchmarks/advanced_pg.py{'' if cartpole else ' --env ' + env_id} --docs`.")


def plot(results: dict, env_id: str, path: str) -> None:
    """reward_100 against env steps, one panel per algorithm, every seed of both systems on the same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    algos = list(results["algos"])
    fig, axes = plt.subplots(1, len(algos), figsize=(4.6 * len(algos), 3.8), sharey=True, squeeze=False)
    for ax, algo in zip(axes[0], algos):
        row = results["algos"][algo]
        for side, colour in (("tfpg", "tab:blue"), ("sb3", "tab:orange")):
            for i, run in enumerate(row[side]):
                steps = [p[0] / 1000 for p in run["curve"]]
                ax.plot(steps, [p[1] for p in run["curve"]], color=colour, lw=1, alpha=0.8,
                        label=("tfpg " + row["tfpg_algo"] if side == "tfpg" else run["system"]) if i == 0 else None)
        if env_id == "CartPole-v1":
            ax.axhline(CARTPOLE_TARGET, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{algo.upper()} on {env_id}")
        ax.set_xlabel("env steps (thousands)")
        ax.legend(loc="lower right", fontsize=8)
    axes[0][0].set_ylabel("reward_100 (training episodes)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def draw(results: dict, env_id: str, json_path: str, png_path: str, venv: str) -> None:
    """The plot from tfpg's venv if it has matplotlib, else from the peers venv (which always has it)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        subprocess.run([peers_python(venv), os.path.abspath(__file__), "--plot-only", json_path, png_path],
                       check=True)
        return
    plot(results, env_id, png_path)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algos", nargs="+", default=["trpo", "ppo", "a2c"], choices=sorted(ZOO_CARTPOLE_BUDGET))
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--total-steps", type=int, default=None, help="budget of both sides (default: the zoo's)")
    p.add_argument("--tfpg-algo", default=None, help="run this tfpg algorithm instead of --algos' (harness tests)")
    p.add_argument("--peers-venv", default=os.environ.get("PEERS_VENV", os.path.expanduser("~/.cache/tfpg-peers-venv")))
    p.add_argument("--peer-torch-threads", type=int, default=0, help="torch threads of the peer; 0 = torch's default")
    p.add_argument("--peer-steps-cap", type=int, default=0,
                   help="stop SB3 after this many steps where its zoo entry has no schedule (a2c and trpo on CartPole, "
                        "trpo on LunarLanderContinuous): "
                        "the run up to the cut is the same; 0 = the zoo's whole budget")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in results/ (same --env); other --algos are added beside it")
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    p.add_argument("--plot-only", nargs=2, metavar=("JSON", "PNG"), help=argparse.SUPPRESS)
    return p.parse_args()


def peer_budget(args, algo: str, steps: int) -> int:
    """SB3's budget: the zoo's, or --peer-steps-cap where cutting it short changes nothing before the cut
    (a zoo entry without schedules, same seed: the same run)."""
    capped = (algo, args.env) in NO_SCHEDULE and args.peer_steps_cap
    return min(steps, args.peer_steps_cap) if capped else steps


def setup(args, stem: str) -> dict:
    """The results skeleton, or with --resume the JSON of an interrupted run of the same work."""
    path = os.path.join(RESULTS, stem + ".json")
    if args.resume and os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
        if results["env_id"] != args.env:
            raise SystemExit(f"--resume: {path} holds another env ({results['env_id']})")
    else:
        results = {"env_id": args.env, "machine": machine(), "algos": {}}
    for algo in args.algos:
        if algo in results["algos"]:
            continue   # --resume with another algorithm adds it beside the ones measured
        tfpg_algo = args.tfpg_algo or algo
        results["algos"][algo] = {"tfpg_algo": tfpg_algo, "tfpg_preset": tfpg_preset(tfpg_algo, args.env),
                                  "budget": budget(algo, args.env, args.total_steps), "tfpg": [], "sb3": [],
                                  "date": machine()["date"]}
    for algo, row in results["algos"].items():
        if "sb3_budget" not in row:   # a JSON from before --peer-steps-cap existed
            row["sb3_budget"] = peer_budget(args, algo, row["budget"])
    return results


def main():
    args = parse_args()
    if args.plot_only:
        with open(args.plot_only[0]) as f:
            results = json.load(f)
        return plot(results, results["env_id"], args.plot_only[1])
    python = peers_python(args.peers_venv)
    stem = "advanced_pg_" + args.env.split("-")[0].lower()
    results = setup(args, stem)
    for k, seed in enumerate(args.seeds):
        for algo in args.algos:
            row = results["algos"][algo]
            # Alternate who goes first, so slow phases of a shared machine hit both alike.
            for side in (("tfpg", "sb3") if k % 2 == 0 else ("sb3", "tfpg")):
                if any(r["seed"] == seed for r in row[side]):
                    continue   # measured before --resume
                r = (run_tfpg(row["tfpg_algo"], args.env, seed, row["budget"]) if side == "tfpg"
                     else run_sb3(python, algo, args.env, seed, row["sb3_budget"], args.peer_torch_threads))
                row[side].append(r)
                save(stem + ".json", results)   # after every run, so an interrupted benchmark keeps what it measured
                print(f"{algo} seed {seed} {side}: " + json.dumps({key: v for key, v in r.items() if key != "curve"}),
                      flush=True)
    save(stem + ".json", results)
    # The table and the plot show --seeds only (a resumed JSON may hold runs of other seeds).
    shown = {**results, "algos": {algo: {**row, **{side: [r for r in row[side] if r["seed"] in args.seeds]
                                                   for side in ("tfpg", "sb3")}}
                                  for algo, row in results["algos"].items()}}
    text = table(shown, args.env, args.seeds)
    print(text)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:   # what the peers venv plots, if it must
        json.dump(shown, f)
        f.flush()
        draw(shown, args.env, f.name, plot_path(stem + ".png"), args.peers_venv)
    if args.docs:
        write_docs_section(f"advanced-pg-{args.env.split('-')[0].lower()}", text +
                           f"\n\n![tfpg vs SB3 learning curves](img/{stem}.png)")

if __name__ == "__main__":
    main()
