"""The Python API (tfpg.PPO(...).learn/predict/save/load/export, tfpg.train) on a user's own env, and the
command line as a layer over it: the same options give the same weights either way."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfpg
from tfpg.cli.train import main as cli_main
from tfpg.core.errors import ConfigError

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TESTS)
import custom_envs  # noqa: E402

CORRIDOR_ID = "custom_envs:tfpg_tests/Corridor-v0"
# Small PPO batches: 4 envs x 64 steps = 256 env steps an iteration, so the budgets below are whole iterations.
SMALL = dict(num_envs=4, horizon=64, epochs=4, progress=False)
BUDGET = 6144
# For the tests of equality, not of learning: 128 env steps a batch, 2 epochs.
TINY = dict(num_envs=4, horizon=32, epochs=2, progress=False)


def weights(agent) -> list[np.ndarray]:
    return [v.numpy() for v in agent.policy.weights]


def assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def saved_variables(export_path: str) -> dict[str, np.ndarray]:
    """The exported policy's variables by checkpoint key (the run's metadata and sampling generator left out)."""
    reader = tf.train.load_checkpoint(os.path.join(export_path, "variables", "variables"))
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
            if "metadata" not in key and "rng" not in key and not key.startswith("_CHECKPOINTABLE")}


def test_a_python_env_learns_and_the_cli_with_its_module_id_gives_the_same_weights(tmp_path):
    """Corridor passed as a class (a zero-argument factory, registered nowhere) learns to walk right from Python:
    a random policy's return is below 0 (it rarely reaches the end within 30 steps), the best is 0.8. The same
    env as `--env module:EnvId` from the command line, with the same options, gives identical weights."""
    agent = tfpg.PPO(custom_envs.Corridor, seed=3, total_steps=BUDGET, logdir=str(tmp_path / "api"), run_name="api",
                     **SMALL)
    agent.learn()
    assert BUDGET <= agent.env_steps < BUDGET + 300   # the first iteration past the budget ends it
    assert agent.result.reward_100 > 0.6, agent.result
    assert agent.config.env_id == "python/custom_envs.Corridor"
    assert agent.predict(np.array([0.0, 0.0], np.float32)) == 1   # the greedy policy walks right from the start
    ours = saved_variables(agent.export(str(tmp_path / "api-export")))
    agent.close()

    flags = ["--algo", "ppo", "--env", CORRIDOR_ID, "--seed", "3", "--total-steps", str(BUDGET), "--num-envs", "4",
             "--horizon", "64", "--epochs", "4", "--no-progress", "--logdir", str(tmp_path / "cli"),
             "--export-dir", str(tmp_path / "sm"), "--run-name", "cli"]
    assert cli_main(flags) == 0
    summary = json.load(open(tmp_path / "cli" / "cli" / "summary.json"))
    assert summary["env_steps"] == agent.env_steps and summary["reward_100"] == agent.result.reward_100, summary
    assert json.load(open(tmp_path / "cli" / "cli" / "config.json"))["env_id"] == CORRIDOR_ID
    theirs = saved_variables(str(tmp_path / "sm" / "cli"))
    assert sorted(ours) == sorted(theirs) and len(ours) >= 4, sorted(ours)
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def test_two_halves_equal_one_learn_and_predict_matches_the_export(tmp_path):
    """learn(n/2) twice = learn(n) along the same horizon (weights, steps, episodes); predict() on a batch is
    the exported SavedModel's serving_default."""
    common = dict(seed=1, total_steps=2048, export=False, **TINY)
    whole = tfpg.PPO(custom_envs.Corridor, logdir=str(tmp_path / "a"), **common).learn(1024)
    halves = tfpg.PPO(custom_envs.Corridor, logdir=str(tmp_path / "b"), **common).learn(512).learn(512)
    assert (whole.env_steps, whole.episodes) == (halves.env_steps, halves.episodes)
    assert_same(weights(whole), weights(halves))
    path = whole.export(str(tmp_path / "export"))
    obs = np.random.default_rng(1).random((32, 2), dtype=np.float32)
    served = tf.saved_model.load(path).signatures["serving_default"](observations=tf.constant(obs))["action"]
    np.testing.assert_array_equal(whole.predict(obs), served.numpy())
    assert whole.predict(obs[0]) == served.numpy()[0]
    whole.close()
    halves.close()


FRESH = """
import sys, numpy as np, tfpg
sys.path.insert(0, {tests!r})
import custom_envs
agent = tfpg.load({path!r}, env=custom_envs.Corridor)
agent.learn()
np.savez({out!r}, steps=agent.env_steps, episodes=agent.episodes, *[v.numpy() for v in agent.policy.weights])
"""


def test_save_then_load_in_a_fresh_process_continues_exactly(tmp_path):
    """learn(n/2) -> save -> tfpg.load in a new process -> learn() ends where one uninterrupted run ends: the
    uninterrupted run checkpoints at n/2 (--checkpoint-every), since a save ends the running episodes as every
    checkpoint does. Loading without the factory says what it needs."""
    common = dict(seed=2, total_steps=1024, export=False, **TINY)
    reference = tfpg.PPO(custom_envs.Corridor, logdir=str(tmp_path / "ref"), checkpoint_every=512, **common).learn()
    saved = tfpg.PPO(custom_envs.Corridor, logdir=str(tmp_path / "run"), run_name="saved", **common)
    saved.learn(512)
    saved.save(str(tmp_path / "my-run"))
    saved.close()
    with pytest.raises(ConfigError, match=r"given from Python .*tfpg.load\('.*my-run', env=\.\.\.\)"):
        tfpg.load(str(tmp_path / "my-run"))
    out = tmp_path / "fresh.npz"
    code = FRESH.format(tests=TESTS, path=str(tmp_path / "my-run"), out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    fresh = np.load(out)
    assert (int(fresh["steps"]), int(fresh["episodes"])) == (reference.env_steps, reference.episodes)
    assert_same(weights(reference), [fresh[f"arr_{i}"] for i in range(len(weights(reference)))])
    reference.close()


class Recorder(tfpg.Callback):
    """Records what the loop hands it; stops the run after `stop_after` iterations."""

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def on_training_start(self, loop):
        self.calls.append(("start", loop.env_steps))

    def on_iteration(self, info):
        self.calls.append(("iteration", info.agent, info.env_steps, "loss_policy" in info.metrics))
        if self.stop_after and sum(c[0] == "iteration" for c in self.calls) >= self.stop_after:
            return False

    def on_evaluation(self, info):
        self.calls.append(("evaluation", info.agent, info.env_steps, len(info.returns)))

    def on_training_end(self, result):
        self.calls.append(("end", result.env_steps))


def test_a_callback_that_returns_false_stops_with_checkpoint_export_and_summary(tmp_path):
    recorder = Recorder(stop_after=3)
    result = tfpg.train(algo="ppo", env=custom_envs.Corridor, seed=0, total_steps=BUDGET, eval_every=200,
                        eval_episodes=2, logdir=str(tmp_path / "runs"), export_dir=str(tmp_path / "sm"),
                        run_name="cb", callbacks=[recorder], **TINY)
    iterations = [c for c in recorder.calls if c[0] == "iteration"]
    assert [c[:2] + c[3:] for c in iterations] == [("iteration", 0, True)] * 3
    steps = iterations[-1][2]
    assert result.env_steps == steps and 3 * 100 <= steps <= 3 * 128   # 128 a batch, less the autoresets
    evaluations = [c for c in recorder.calls if c[0] == "evaluation"]
    periodic = next(c[2] for c in iterations if c[2] >= 200)
    assert periodic < steps
    assert evaluations == [("evaluation", 0, periodic, 2), ("evaluation", 0, steps, 2)]   # periodic, then the last
    assert recorder.calls[0] == ("start", 0) and ("end", steps) in recorder.calls
    assert os.path.exists(tmp_path / "runs" / "cb" / "checkpoints" / f"ckpt-{steps}.index")
    assert os.path.exists(tmp_path / "sm" / "cb" / "saved_model.pb")
    assert json.load(open(tmp_path / "runs" / "cb" / "summary.json"))["env_steps"] == steps


def test_bad_options_raise_the_cli_line_and_write_nothing(tmp_path):
    with pytest.raises(ConfigError, match=r"^--lr must be <= 1.0, got 3$"):
        tfpg.PPO("CartPole-v1", lr=3, logdir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"unknown option 'learning_rate'"):
        tfpg.PPO("CartPole-v1", learning_rate=3e-4, logdir=str(tmp_path))
    with pytest.raises(ConfigError, match="an env instance is one env"):
        tfpg.PPO(custom_envs.Corridor(), num_envs=4, logdir=str(tmp_path))
    assert os.listdir(tmp_path) == []
