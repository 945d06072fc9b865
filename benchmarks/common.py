"""Shared helpers for tfpg's benchmarks: run train.py per seed, summarise, write the table into its docs page."""
from __future__ import annotations

import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
# The results pages of the documentation site; each holds the <!-- bench:KEY --> blocks the scripts write,
# and img/ the plots those blocks show (linked as img/NAME.png from the page).
DOCS_RESULTS = os.path.join(ROOT, "docs", "results")
PLOTS = os.path.join(DOCS_RESULTS, "img")


def run_training(args: list[str], seed: int, curves: tuple[str, ...] = ()) -> dict:
    """Run `train.py ARGS --seed S` in a fresh process; wall seconds of the whole process plus
    the run's summary.json (training seconds from the first env step, env steps, reward_100),
    and for each tag in `curves` its (env_steps, value) series from the TensorBoard events."""
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
            summary["curves"] = read_scalars(os.path.join(tmp, "bench"), curves)
    summary.update(seed=seed, process_wall_s=wall)
    return summary


def read_scalars(run_dir: str, tags) -> dict:
    """{tag: [[step, value], ...]} from a run's TensorBoard events."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(run_dir, size_guidance={"tensors": 0})
    acc.Reload()
    available = set(acc.Tags()["tensors"])
    curves = {}
    for tag in tags:
        if tag not in available:
            continue
        points = []
        # A resumed run restarts at its checkpoint's step, below the last point the interrupted
        # process logged; those later points were never part of the resumed history, so drop them.
        for e in sorted(acc.Tensors(tag), key=lambda e: e.wall_time):
            while points and points[-1][0] >= e.step:
                points.pop()
            points.append([e.step, float(tf.make_ndarray(e.tensor_proto))])
        curves[tag] = points
    return curves


def med_range(values, fmt="{:.1f}") -> str:
    values = list(values)
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d")}


def run_presets(presets, seeds, extra: str, describe) -> list[dict]:
    """Train each preset on each seed, one process at a time; [{"preset", "runs": [summary, ...]}]."""
    rows = []
    for preset in presets:
        runs = []
        for seed in seeds:
            r = run_training(["--preset", preset, *extra.split()], seed)
            print(f"{preset} seed {seed}: {describe(r)}", flush=True)
            runs.append(r)
        rows.append({"preset": preset, "runs": runs})
    return rows


def stats_cells(runs: list[dict], *keys: str) -> str:
    """Table cells "median [min–max]" of each key over a group of runs; step counts without decimals."""
    integer = {"env_steps", "steps_per_s"}
    return " | ".join(med_range((r[k] for r in runs), "{:,.0f}" if k in integer else "{:.1f}") for k in keys)


def footer(seeds, script: str, extra: str = "") -> str:
    """The line under a results table: what the numbers are, where and how they were made."""
    m = machine()
    return (f"Median [min–max] over seeds {', '.join(map(str, seeds))}; {m['cpus']} cores, Python {m['python']}, "
            f"{m['date']}{extra}; `python benchmarks/{script} --docs`.")


def publish(key: str, text: str, results_name: str, payload: dict, docs: bool) -> None:
    """Print a results table; with --docs put it in its docs page and its raw numbers under results/
    (only together, so that a trial run never leaves results/ disagreeing with the docs)."""
    print(text)
    if docs:
        save(results_name, {"machine": machine(), **payload})
        write_docs_section(key, text)


def save(name: str, payload: dict) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    return path


def plot_path(name: str) -> str:
    """Where a plot the docs show is written: docs/results/img/NAME (a block links it as img/NAME)."""
    os.makedirs(PLOTS, exist_ok=True)
    return os.path.join(PLOTS, name)


def command() -> str:
    """The command line that is running, as a user would type it from the repository root."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    return shlex.join(["python", script, *sys.argv[1:]])


def stamp() -> str:
    """The last line of every block the benchmarks write: when, and by which command."""
    return f"Table written {time.strftime('%Y-%m-%d')} by `{command()}`."


STAMP = re.compile(r"^Table written (\d{4}-\d{2}-\d{2}) by `(python benchmarks/[^`]+)`\.$", re.M)


def bench_pages(key: str) -> list[str]:
    """The results pages that hold <!-- bench:KEY --> (exactly one should)."""
    pages = sorted(os.path.join(DOCS_RESULTS, n) for n in os.listdir(DOCS_RESULTS) if n.endswith(".md"))
    return [p for p in pages if f"<!-- bench:{key} -->\n" in open(p).read()]


def write_docs_section(key: str, text: str) -> None:
    """Replace the text between <!-- bench:KEY --> and <!-- /bench:KEY --> in its page under docs/results/
    with `text` and a stamp line (date and command)."""
    pages = bench_pages(key)
    if len(pages) != 1:
        raise SystemExit(f"{len(pages)} pages under docs/results/ have a <!-- bench:{key} --> section; there "
                         "should be exactly one")
    with open(pages[0]) as f:
        content = f.read()
    pattern = re.compile(rf"(<!-- bench:{key} -->\n).*?(<!-- /bench:{key} -->)", re.S)
    if not pattern.search(content):
        raise SystemExit(f"{pages[0]} has no <!-- /bench:{key} --> closing its section")
    body = text.rstrip() + "\n\n" + stamp() + "\n"
    content = pattern.sub(lambda m: m.group(1) + body + m.group(2), content)
    with open(pages[0], "w") as f:
        f.write(content)
