"""Run the CLI on bad inputs and damaged files and write the table of what each gets (docs/results/bad-inputs.md).

For every case: the exit status, the last line on stderr (for a resume that falls back to an older
checkpoint, its "resume:" line), and whether any file or folder appeared in the working directory
(there must be none for a refusal). Damaged files are made by damaging a copy of a tiny run just
before its case; a full disk is simulated by benchmarks/full_disk.py. Not a speed benchmark; it
lives here because it writes a docs section the same way the benchmarks do.

    python benchmarks/bad_inputs.py [--docs]
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

from common import ROOT, write_docs_section

TRAIN = [sys.executable, os.path.join(ROOT, "train.py")]
EVALUATE = [sys.executable, "-m", "tfpg.evaluate"]
EXPORT = [sys.executable, "-m", "tfpg.export.formats"]
FULL_DISK = [sys.executable, os.path.join(ROOT, "benchmarks", "full_disk.py")]
PROGRAMS = {"python train.py": TRAIN, "python -m tfpg.evaluate": EVALUATE, "tfpg-export": EXPORT,
            "python benchmarks/full_disk.py": FULL_DISK}
SHIPPED = os.path.join(ROOT, "saved_models", "cartpole-reinforce")



# --- damaged copies of "runs/ckpt" and its export "models/ckpt", made just before their case runs --------------

def flip_bytes(path: str, start: int = 16, count: int = 100) -> None:
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        data[start:start + count] = bytes(b ^ 0xFF for b in data[start:start + count])
        f.seek(0)
        f.write(data)


def cut_short(path: str) -> None:
    os.truncate(path, os.path.getsize(path) // 2)


def newest(checkpoints: str) -> str:
    """The prefix of the newest checkpoint (highest env step) in a checkpoints folder."""
    return max(glob.glob(os.path.join(checkpoints, "ckpt-*.index")), key=lambda p: int(p.split("-")[-1][:-6]))[:-6]


def damaged_run(name: str, damage):
    """Setup: copy runs/ckpt (and models/ckpt) to runs/NAME, then `damage(run_dir)`."""
    def setup(tmp: str) -> None:
        for folder in ("runs", "models"):
            shutil.copytree(os.path.join(tmp, folder, "ckpt"), os.path.join(tmp, folder, name))
        damage(os.path.join(tmp, "runs", name))
    return setup


def damaged_export(name: str, damage):
    """Setup: copy models/ckpt to models/NAME, then `damage(export_dir)`."""
    def setup(tmp: str) -> None:
        shutil.copytree(os.path.join(tmp, "models", "ckpt"), os.path.join(tmp, "models", name))
        damage(os.path.join(tmp, "models", name))
    return setup


def _data(prefix: str) -> str:
    return prefix + ".data-00000-of-00001"


def _point_to_missing(run_dir: str) -> None:
    with open(os.path.join(run_dir, "checkpoints", "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-99999"\nall_model_checkpoint_paths: "ckpt-99999"\n')


def _garbage(path: str) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(2000))


CKPTS = lambda run_dir: os.path.join(run_dir, "checkpoints")   # noqa: E731
# (what is wrong, command[, setup, outcome]). Outcome "refused" (the default): exit 2, one line, nothing
# created; "fallback": the resume goes on from an older checkpoint after one "resume:" line; "stops": exit 1.
# Made first: "runs/done", a finished tiny run without checkpoints, its export moved to "models/fresh",
# and "runs/ckpt", a tiny run with three checkpoints (50 env steps apart) and its export "models/ckpt".
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
    ("a flag another setting makes inert", TRAIN + ["--algo", "a2c", "--shared-torso", "true", "--critic-lr", "0.01"]),
    ("observation statistics on frames", TRAIN + ["--algo", "ppo", "--env", "CarRacing-v3", "--normalize-obs", "true"]),
    ("negative learning rate", TRAIN + ["--lr", "-0.01"]),
    ("discount above 1", TRAIN + ["--gamma", "1.5"]),
    ("NaN hyperparameter", TRAIN + ["--entropy-beta", "nan"]),
    ("zero environments", TRAIN + ["--num-envs", "0"]),
    ("bad layer widths", TRAIN + ["--hidden", "64,x"]),
    ("lambda returns without a value function", TRAIN + ["--returns", "lambda"]),
    ("n-step returns with per-episode updates", TRAIN + ["--returns", "nstep", "--steps-per-update", "8", "--update", "episode"]),
    ("reward normalisation with n-step returns", TRAIN + ["--returns", "nstep", "--steps-per-update", "8",
                                                          "--normalize-reward", "true"]),
    ("--backend graph with the actor-critics' normalisations", TRAIN + ["--algo", "ppo", "--env", "Acrobot-v1",
                                                                        "--backend", "graph"]),
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
    ("--resume, bytes flipped in the newest checkpoint's data file", TRAIN + ["--resume", "runs/flip"],
     damaged_run("flip", lambda d: flip_bytes(_data(newest(CKPTS(d))))), "fallback"),
    ("--resume, the newest checkpoint's .index cut short", TRAIN + ["--resume", "runs/cut"],
     damaged_run("cut", lambda d: cut_short(newest(CKPTS(d)) + ".index")), "fallback"),
    ("--resume, the newest checkpoint's data file missing", TRAIN + ["--resume", "runs/gone"],
     damaged_run("gone", lambda d: os.remove(_data(newest(CKPTS(d))))), "fallback"),
    ("--resume, the checkpoint pointer names a missing checkpoint", TRAIN + ["--resume", "runs/pointer"],
     damaged_run("pointer", _point_to_missing), "fallback"),
    ("--resume, every checkpoint damaged", TRAIN + ["--resume", "runs/allbad"],
     damaged_run("allbad", lambda d: [flip_bytes(p) for p in glob.glob(os.path.join(CKPTS(d), "*.data-*"))])),
    ("--resume, config.json cut short", TRAIN + ["--resume", "runs/cutconfig"],
     damaged_run("cutconfig", lambda d: cut_short(os.path.join(d, "config.json")))),
    ("evaluate, saved_model.pb overwritten with garbage", EVALUATE + ["models/garbage"],
     damaged_export("garbage", lambda m: _garbage(os.path.join(m, "saved_model.pb")))),
    ("evaluate, tfpg_metadata.json cut short", EVALUATE + ["models/cutmeta"],
     damaged_export("cutmeta", lambda m: cut_short(os.path.join(m, "tfpg_metadata.json")))),
    ("evaluate, bytes flipped in the SavedModel's variables", EVALUATE + ["models/flipvars"],
     damaged_export("flipvars", lambda m: flip_bytes(_data(os.path.join(m, "variables", "variables"))))),
    ("tfpg-export, saved_model.pb overwritten with garbage", EXPORT + ["models/garbage2", "--format", "onnx"],
     damaged_export("garbage2", lambda m: _garbage(os.path.join(m, "saved_model.pb")))),
    ("disk full while writing a checkpoint (simulated)",
     FULL_DISK + ["checkpoint", "--resume", "runs/full1", "--total-steps", "400"],
     damaged_run("full1", lambda d: None), "stops"),
    ("disk full while writing the export (simulated)", FULL_DISK + ["export", "--resume", "runs/full2"],
     damaged_run("full2", lambda d: None), "stops"),
]
EXIT = {"refused": 2, "fallback": 0, "stops": 1}


def snapshot(root: str) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files}


def run_case(tmp: str, env: dict, case: tuple) -> tuple:
    """(what, command shown, exit status, the line, files created, whether it went as expected)."""
    what, cmd, setup, outcome = case + (None, "refused")[len(case) - 2:]
    if setup:
        setup(tmp)
    before = snapshot(tmp)
    r = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    if outcome == "fallback":   # the run goes on after its "resume:" line
        lines = [line for line in lines if line.startswith("resume:")] or lines
    line = (lines[-1] if lines else "(nothing on stderr)").replace(os.path.realpath(tmp) + "/", "")
    line = line.replace(tmp + "/", "").replace(ROOT + "/", "")
    created = sorted({re.sub(r"events\.out\.tfevents\.\S+", "events.out.tfevents.*", f) for f in snapshot(tmp) - before})
    prog = next(name for name, command in PROGRAMS.items() if cmd[:len(command)] == command)
    shown = f"{prog} {' '.join(cmd[len(PROGRAMS[prog]):])}".replace(ROOT + "/", "")
    ok = (r.returncode == EXIT[outcome] and "Traceback" not in r.stderr and (outcome != "refused" or not created)
          and (outcome != "fallback" or line.startswith("resume: ")))
    return what, shown, r.returncode, line, created, ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    env = dict(os.environ, PYTHONPATH=ROOT)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tiny = TRAIN + ["--total-steps", "200", "--stop-reward", "1000", "--num-envs", "2", "--no-progress",
                        "--logdir", "runs", "--export-dir", "models"]
        subprocess.run(tiny + ["--run-name", "done"], cwd=tmp, env=env, check=True, capture_output=True)
        subprocess.run(tiny + ["--run-name", "ckpt", "--checkpoint-every", "50", "--episodes-per-update", "2"],
                       cwd=tmp, env=env, check=True, capture_output=True)
        os.rename(os.path.join(tmp, "models", "done"), os.path.join(tmp, "models", "fresh"))
        for case in CASES:
            rows.append(run_case(tmp, env, case))
            what, _, code, line, created, ok = rows[-1]
            print(f"{code}  {what}: {line}" + (f"  CREATED {created}" if created else "") + ("" if ok else "  UNEXPECTED"),
                  flush=True)
    table = ["| bad input | command | exit | message (the one line on stderr) | files created |", "|---|---|---|---|---|"]
    for what, cmd, code, line, created, _ in rows:
        msg = line.replace("|", "\\|")
        table.append(f"| {what} | `{cmd}` | {code} | {msg} | {', '.join(created) or 'none'} |")
    text = "\n".join(table) + "\n\nGenerated by `python benchmarks/bad_inputs.py --docs`."
    if args.docs:
        write_docs_section("bad-inputs", text)
    else:
        print(text)
    bad = [r[0] for r in rows if not r[5]]
    if bad:
        raise SystemExit(f"{len(bad)} cases did not end as expected: {bad}")


if __name__ == "__main__":
    main()
