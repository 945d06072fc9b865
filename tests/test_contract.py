"""The algorithm contract is real: a toy algorithm defined here, registered from outside tfpg,
trains through the normal CLI entry point with checkpoints, a SIGKILL and a resume, greedy
evaluation and a SavedModel export, without any change to a tfpg module."""
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import tensorflow as tf
from conftest import ROOT, run_tensorflow_only

from tfpg.algos.base import Algorithm, Iteration
from tfpg.core.checkpoint import rng_state_from_array, rng_state_to_array
from tfpg.config.run import Preset, RunConfig
from tfpg.config.options import option

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class ToyConfig(RunConfig):
    """Random actions; each update moves the greedy action's preference by --toy-step."""

    algo: str = "toy-random"
    num_envs: int = 2
    toy_step: float = option(0.5, "how far each update moves the preferred action", low=0.0)
    steps_per_update: int = option(8, "vector steps of random actions per update", low=1)


class ToyPolicy:
    """Greedy action = argmax of a learned preference vector, whatever the observation."""

    kind = "toy"

    def __init__(self, observation_space, action_space):
        self.observation_space = observation_space
        self.preference = tf.Variable(tf.zeros([action_space.n]), name="preference")

    @property
    def trackables(self):
        return {"preference": self.preference}

    def mode(self, obs):
        best = tf.argmax(self.preference, output_type=tf.int32)
        return tf.fill([tf.shape(obs)[0]], best)

    def greedy_numpy(self, obs):
        return self.mode(tf.convert_to_tensor(obs, tf.float32)).numpy()


class RandomCounter(Algorithm):
    name = "toy-random"
    config_class = ToyConfig
    action_spaces = (gym.spaces.Discrete,)
    loss_metric = "counter"
    presets = (Preset("toy-cartpole", "toy-random", "random actions on CartPole", "tests/test_contract.py",
                      dict(env_id="CartPole-v1", total_steps=4000)),)

    def __init__(self, config, spaces, stepper):
        self.config, self.stepper = config, stepper
        self.policy = ToyPolicy(spaces.observation_space, spaces.action_space)
        self.counter = tf.Variable(0, dtype=tf.int64, name="counter")
        self.rng = np.random.default_rng(config.seed)
        self.num_actions = int(spaces.action_space.n)

    def trackables(self):
        return {"counter": self.counter, "preference": self.policy.preference}

    def state(self):
        return {"rng": rng_state_to_array(self.rng)}

    def load_state(self, state):
        rng_state_from_array(self.rng, state["rng"])

    def iteration(self):
        for _ in range(self.config.steps_per_update):
            self.stepper.step(self.rng.integers(0, self.num_actions, self.stepper.num_envs))
        self.counter.assign_add(1)
        chosen = int(self.rng.integers(0, self.num_actions))
        self.policy.preference.assign_add(self.config.toy_step * tf.one_hot(chosen, self.num_actions))
        return Iteration({"counter": float(self.counter.numpy())})


def register():
    from tfpg.algos.registry import register as add

    add(RandomCounter)


# The subprocess: register the toy algorithm, then run train.py's main with slowed, announced checkpoint writes.
MAIN = ("import sys; sys.path.insert(0, {here!r}); import test_contract, slow_writes; test_contract.register(); "
        "sys.exit(slow_writes.run(float(sys.argv[1]), sys.argv[2:]))")
FLAGS = ["--algo", "toy-random", "--seed", "4", "--checkpoint-every", "1000", "--eval-every", "1500",
         "--eval-episodes", "3", "--no-progress"]


def _train(args, cwd, delay=0.0):
    return subprocess.Popen([sys.executable, "-c", MAIN.format(here=HERE), str(delay), *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=ROOT))


def _finish(proc):
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


EXPORTED = ("import json, sys, numpy as np, tensorflow as tf\n"
            "m = tf.saved_model.load(sys.argv[1])\n"
            "a = m.signatures['serving_default'](observations=tf.zeros([3, 4]))['action'].numpy()\n"
            "print(json.dumps({'preference': m.preference.numpy().tolist(), 'actions': a.tolist(),\n"
            "                  'tfpg': any(k.split('.')[0] == 'tfpg' for k in sys.modules)}))")


def test_a_toy_algorithm_trains_checkpoints_resumes_evaluates_and_exports(tmp_path):
    reference = _finish(_train(FLAGS + ["--total-steps", "9000", "--run-name", "ref"], tmp_path))
    assert "stopped after" in reference
    # killed while its second checkpoint is half written, then resumed to the same budget
    proc = _train(FLAGS + ["--total-steps", "900000", "--run-name", "k"], tmp_path, delay=3)
    seen = 0
    for line in proc.stdout:
        seen += "checkpoint data written" in line
        if seen == 2:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = _finish(_train(["--resume", "runs/k", "--total-steps", "9000", "--no-progress"], tmp_path))
    assert "stopped after" in resumed
    runs = {name: json.loads((tmp_path / "runs" / name / "summary.json").read_text()) for name in ("ref", "k")}
    for key in ("env_steps", "episodes", "reward_100", "eval_reward", "evaluations", "updates"):
        assert runs["k"][key] == runs["ref"][key], key
    assert runs["ref"]["evaluations"] == 6 and runs["ref"]["updates"] > 500
    exports = {name: run_tensorflow_only(EXPORTED, tmp_path / "saved_models" / name, cwd="/") for name in ("ref", "k")}
    assert exports["k"] == exports["ref"] and not exports["ref"]["tfpg"]
    assert max(exports["ref"]["preference"]) > 0 and len(set(exports["ref"]["actions"])) == 1
    meta = json.loads((tmp_path / "saved_models" / "ref" / "tfpg_metadata.json").read_text())
    assert meta["algorithm"] == "toy-random" and meta["policy"] == "toy" and meta["eval_reward"] == runs["ref"]["eval_reward"]


def test_the_toy_algorithm_gets_the_clis_checks_and_presets(tmp_path, monkeypatch):
    """Its own flag is validated from its declaration; other algorithms' flags are refused; its preset is listed.
    (The command line in this process, the toy registered for this test only.)"""
    from conftest import cli_here

    from tfpg.algos.registry import REGISTRY

    monkeypatch.setitem(REGISTRY, RandomCounter.name, RandomCounter)
    bad = cli_here(["--algo", "toy-random", "--toy-step", "-1"], tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].endswith("--toy-step must be >= 0.0, got -1.0")
    other = cli_here(["--algo", "toy-random", "--buffer-size", "10"], tmp_path)
    assert other.returncode == 2 and "--buffer-size does not apply to --algo toy-random" in other.stderr
    listing = cli_here(["--list-presets"], tmp_path)
    assert "toy-cartpole" in listing.stdout and listing.returncode == 0
    assert os.listdir(tmp_path) == []
