"""Shared helpers for tfpg's benchmarks: run train.py per seed, summarise, write the README table."""
from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")


def run_training(args: list[str], seed: int, curves: tuple[str, ...] = ()) -> dict:
    """Run `train.py ARGS --seed S` in a fresh process; wall seconds of the whole process plus
    the run's summary.json (training seconds from the first env step, env steps, reward_100),
    and under "curves" the [(env_step, value)] series of the TensorBoard tags in `curves`."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, os.path.join(ROOT, "train.py"), *args, "--seed", str(seed), "--no-export",
               "--no-progress", "--logdir", tmp, "--run-name", "bench"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        with open(os.path.join(tmp, "bench", "summary.json")) as f:
            summary = json.load(f)
        if curves:
            summary["curves"] = read_curves(os.path.join(tmp, "bench"), curves)
    summary.update(seed=seed, process_wall_s=wall)
    return summary


def read_curves(run_dir: str, tags) -> dict:
    """{tag: [(env_step, value), ...]} from a run's TensorBoard events."""
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(run_dir, size_guidance={"tensors": 0})
    acc.Reload()
    have = set(acc.Tags()["tensors"])
    return {tag: [(e.step, float(np.asarray(tensor_util.make_ndarray(e.tensor_proto)))) for e in acc.Tensors(tag)]
            for tag in tags if tag in have}


def med_range(values, fmt="{:.1f}") -> str:
    values = list(values)
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d")}


def save(name: str, payload: dict) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    return path


def write_readme_section(key: str, text: str) -> None:
    """Replace the README text between <!-- bench:KEY --> and <!-- /bench:KEY -->."""
    readme = os.path.join(ROOT, "README.md")
    with open(readme) as f:
        content = f.read()
    pattern = re.compile(rf"(<!-- bench:{key} -->\n).*?(<!-- /bench:{key} -->)", re.S)
    if not pattern.search(content):
        raise SystemExit(f"README.md has no <!-- bench:{key} --> section")
    content = pattern.sub(lambda m: m.group(1) + text.rstrip() + "\n" + m.group(2), content)
    with open(readme, "w") as f:
        f.write(content)
