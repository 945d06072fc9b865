"""Per-call latency of an exported policy in each deployment runtime, at batch 1 and batch 64.

    python benchmarks/deploy_latency.py [--docs]          (needs the extras: pip install -e ".[litert,onnx]")

Models: the shipped `cartpole-reinforce` (MLP 4-128-2) and `lunarlander-pg` (MLP 8-64-64-2, obs
normalisation, Gaussian), and an Atari-size Nature CNN (categorical, 6 actions, 4x84x84 uint8 frames,
random weights) exported for the purpose. Each is converted with `tfpg-export` to .tflite and .onnx
in a temporary folder. Runtimes, each timed in a fresh process that imports only what it needs:

  SavedModel    tf.saved_model.load, the `serving_default` signature (greedy action), numpy in/out
  LiteRT        ai-edge-litert's Interpreter signature runner (action and parameters), default threads
  ONNX Runtime  InferenceSession, CPUExecutionProvider (action and parameters), default threads

Latency of one call: numpy observations in, numpy outputs out, after 50 warm-up calls; the median
over 7 rounds of the per-call mean of a round (0.3 s or more of calls each).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, machine, publish

BATCHES = (1, 64)
RUNTIMES = {"SavedModel": "saved_model", "LiteRT": "litert", "ONNX Runtime": "onnx"}


def time_calls(call, observations, rounds: int = 7, min_round_s: float = 0.3) -> float:
    """Median over `rounds` of the mean seconds per call(observations)."""
    for _ in range(50):
        call(observations)
    n, means = 1, []
    while True:   # find a call count that fills a round
        t0 = time.perf_counter()
        for _ in range(n):
            call(observations)
        if time.perf_counter() - t0 >= min_round_s:
            break
        n *= 2
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            call(observations)
        means.append((time.perf_counter() - t0) / n)
    return float(np.median(means))


def worker(runtime: str, path: str, obs_shape: list[int], dtype: str) -> dict:
    """{batch: microseconds per call} for one model in one runtime (run in its own process)."""
    from tfpg.export.formats import litert_runner, onnx_runner, saved_model_actor

    if runtime == "saved_model":
        call = saved_model_actor(path)[0]
    else:
        call = (litert_runner if runtime == "litert" else onnx_runner)(path)
    rng = np.random.default_rng(0)
    result = {}
    for batch in BATCHES:
        if dtype == "uint8":
            obs = rng.integers(0, 256, size=(batch, *obs_shape), dtype=np.uint8)
        else:
            obs = rng.normal(size=(batch, *obs_shape)).astype(np.float32)
        result[batch] = time_calls(call, obs) * 1e6
    result["imported_tensorflow"] = "tensorflow" in sys.modules
    return result


def export_cnn(folder: str) -> str:
    """An Atari-size categorical Nature-CNN policy with its initial weights, exported into `folder`."""
    import gymnasium as gym

    from tfpg.envs.make import space_to_dict
    from tfpg.export.saved_model import export_policy
    from tfpg.models.policies import CategoricalPolicy

    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    policy = CategoricalPolicy(frames, gym.spaces.Discrete(6), hidden=(512,), seed=0)
    metadata = {"algorithm": "reinforce", "policy": "categorical", "env_id": "PongNoFrameskip-v4",
                "observation_space": space_to_dict(frames), "action_space": space_to_dict(gym.spaces.Discrete(6))}
    return export_policy(policy, metadata, os.path.join(folder, "nature-cnn"))


def run_worker(runtime: str, path: str, obs_shape, dtype: str) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, __file__, "--worker", runtime, path, json.dumps(list(obs_shape)), dtype]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{runtime} on {path} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def size_of(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def measure(folder: str) -> dict:
    """{model: {runtime: {"bytes", "1", "64", ...}}} for the three models."""
    from tfpg.export.formats import convert

    models = {}
    for name in ("cartpole-reinforce", "lunarlander-pg"):
        models[name] = shutil.copytree(os.path.join(ROOT, "saved_models", name), os.path.join(folder, name))
    models["nature-cnn (Atari)"] = export_cnn(folder)
    results = {}
    for name, saved_model in models.items():
        with open(os.path.join(saved_model, "tfpg_metadata.json")) as f:
            space = json.load(f)["observation_space"]
        files = {"saved_model": saved_model, "litert": convert(saved_model, "litert"),
                 "onnx": convert(saved_model, "onnx")}
        results[name] = {}
        for label, runtime in RUNTIMES.items():
            timing = run_worker(runtime, files[runtime], space["shape"], space.get("dtype", "float32"))
            results[name][label] = {"bytes": size_of(files[runtime]), **timing}
            print(name, label, results[name][label], flush=True)
    return results


def table(results: dict, load: tuple) -> str:
    lines = ["| model | runtime | size | batch 1 (µs/call) | batch 64 (µs/call) |", "|---|---|---|---|---|"]
    for name, runtimes in results.items():
        for label, r in runtimes.items():
            size = f"{r['bytes'] / 1024:,.0f} KiB" if r["bytes"] < 2**20 else f"{r['bytes'] / 2**20:,.1f} MiB"
            lines.append(f"| {name} | {label} | {size} | {r['1']:,.0f} | {r['64']:,.0f} |")
    m = machine()
    lines.append("")
    lines.append(f"Median of 7 rounds; {m['cpus']} cores, 1-min load average {load[0]:.1f} before and {load[1]:.1f} after "
                 f"(other work on the machine), Python {m['python']}, {m['date']}; SavedModel size is the whole folder; "
                 "`python benchmarks/deploy_latency.py --docs`.")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        runtime, path, shape, dtype = sys.argv[2:6]
        print(json.dumps(worker(runtime, path, json.loads(shape), dtype)))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into docs/results/ and results/deploy_latency.json (--readme: the old name)")
    args = p.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        results = measure(folder)
    load = (load_before, os.getloadavg()[0])
    publish("deploy-latency", table(results, load), "deploy_latency.json", {"results": results, "load": load},
            args.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
