"""Run the CLI on bad inputs and write the README table of what each gets.

For every case: the exit status, the last line on stderr, and whether any file or folder
appeared in the working directory (there must be none). Not a speed benchmark; it lives here
because it writes a README section the same way the benchmarks do.

    python benchmarks/bad_inputs.py [--readme]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from common import ROOT, write_readme_section

TRAIN = [sys.executable, os.path.join(ROOT, "train.py")]
EVALUATE = [sys.executable, "-m", "tfpg.evaluate"]
SHIPPED = os.path.join(ROOT, "saved_models", "cartpole-reinforce")

# (what is wrong, command). Made first: "runs/done", a finished tiny run without checkpoints, its
# export moved to "models/fresh", and "runs/ckpt", a tiny run with checkpoints.
CASES = [
    ("misspelt env id", TRAIN + ["--env", "CartPol-v1"]),
    ("env id that does not exist", TRAIN + ["--env", "ALE/Pongg-v5"]),
    ("unknown preset", TRAIN + ["--preset", "cartpole"]),
    ("unknown algorithm", TRAIN + ["--algo", "sac"]),
    ("DQN on continuous actions", TRAIN + ["--algo", "dqn", "--env", "LunarLanderContinuous-v3"]),
    ("categorical policy on continuous actions", TRAIN + ["--policy", "categorical", "--env", "LunarLanderContinuous-v3"]),
    ("Gaussian policy on discrete actions", TRAIN + ["--policy", "gaussian"]),
    ("a flag of another algorithm", TRAIN + ["--buffer-size", "1000"]),
    ("a Gaussian-only flag on a discrete env", TRAIN + ["--std-ceiling", "0.2"]),
    ("negative learning rate", TRAIN + ["--lr", "-0.01"]),
    ("discount above 1", TRAIN + ["--gamma", "1.5"]),
    ("NaN hyperparameter", TRAIN + ["--entropy-beta", "nan"]),
    ("zero environments", TRAIN + ["--num-envs", "0"]),
    ("bad layer widths", TRAIN + ["--hidden", "64,x"]),
    ("lambda returns without a value function", TRAIN + ["--returns", "lambda"]),
    ("n-step returns with per-episode updates", TRAIN + ["--returns", "nstep", "--steps-per-update", "8", "--update", "episode"]),
    ("exponential epsilon decay to 0", TRAIN + ["--algo", "dqn", "--eps-schedule", "exponential", "--eps-end", "0"]),
    ("stop on evaluation without evaluations", TRAIN + ["--stop-on", "eval"]),
    ("--export-best without evaluations", TRAIN + ["--export-best", "true"]),
    ("negative checkpoint interval", TRAIN + ["--checkpoint-every", "-5"]),
    ("unwritable log folder", TRAIN + ["--logdir", "/proc/tfpg-runs"]),
    ("run name that exists", TRAIN + ["--logdir", "runs", "--run-name", "done"]),
    ("export that exists, no --overwrite", TRAIN + ["--export-dir", "models", "--run-name", "fresh", "--logdir", "runs2"]),
    ("unknown flag", TRAIN + ["--bogus"]),
    ("--resume of a missing folder", TRAIN + ["--resume", "runs/missing"]),
    ("--resume of a folder without checkpoints", TRAIN + ["--resume", "runs/done"]),
    ("--resume with another algorithm", TRAIN + ["--resume", "runs/ckpt", "--algo", "dqn"]),
    ("--resume with another env", TRAIN + ["--resume", "runs/ckpt", "--env", "Acrobot-v1"]),
    ("--resume with a changed hyperparameter", TRAIN + ["--resume", "runs/ckpt", "--lr", "0.1"]),
    ("evaluate a folder that is not a tfpg SavedModel", EVALUATE + ["runs"]),
    ("evaluate a missing folder", EVALUATE + ["models/missing"]),
    ("evaluate on an env whose spaces do not match", EVALUATE + [SHIPPED, "--env", "Acrobot-v1"]),
]


def snapshot(root: str) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = p.parse_args()
    env = dict(os.environ, PYTHONPATH=ROOT)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tiny = TRAIN + ["--total-steps", "200", "--stop-reward", "1000", "--num-envs", "2", "--no-progress",
                        "--logdir", "runs", "--export-dir", "models"]
        subprocess.run(tiny + ["--run-name", "done"], cwd=tmp, env=env, check=True, capture_output=True)
        subprocess.run(tiny + ["--run-name", "ckpt", "--no-export", "--checkpoint-every", "50"], cwd=tmp, env=env,
                       check=True, capture_output=True)
        os.rename(os.path.join(tmp, "models", "done"), os.path.join(tmp, "models", "fresh"))
        for what, cmd in CASES:
            before = snapshot(tmp)
            r = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
            last = (lines[-1] if lines else "(nothing on stderr)").replace(os.path.realpath(tmp) + "/", "")
            last = last.replace(tmp + "/", "").replace(ROOT + "/", "")
            created = sorted(snapshot(tmp) - before)
            shown = " ".join(a if a not in (TRAIN + EVALUATE) else "" for a in cmd).strip()
            shown = shown.replace(ROOT + "/", "")
            prog = "python train.py" if cmd[:2] == TRAIN else "python -m tfpg.evaluate"
            rows.append((what, f"{prog} {shown}", r.returncode, last, created))
            print(f"{r.returncode}  {what}: {last}" + (f"  CREATED {created}" if created else ""), flush=True)
    table = ["| bad input | command | exit | message (the one line on stderr) | files created |", "|---|---|---|---|---|"]
    for what, cmd, code, last, created in rows:
        msg = last.replace("|", "\\|")
        table.append(f"| {what} | `{cmd}` | {code} | {msg} | {', '.join(created) or 'none'} |")
    text = "\n".join(table) + "\n\nGenerated by `python benchmarks/bad_inputs.py --readme`."
    if args.readme:
        write_readme_section("bad-inputs", text)
    else:
        print(text)
    bad = [r for r in rows if r[2] == 0 or r[4] or "Traceback" in r[3]]
    if bad:
        raise SystemExit(f"{len(bad)} bad inputs were not refused cleanly: {[r[0] for r in bad]}")


if __name__ == "__main__":
    main()
