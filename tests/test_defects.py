"""Defects found in the architecture review, each pinned by a test that failed before its fix."""
import json
import os

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import cli_here, run_cli

from tfpg.core.errors import ConfigError
from tfpg.experience.replay import TransitionBatch
from tfpg.envs.stepping import VecStepper

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def test_dqn_export_best_exports_the_best_evaluated_q_network(tmp_path):
    """Was: AttributeError traceback (QPolicy had no get_state) after config.json was written."""
    flags = ["--algo", "dqn", "--total-steps", "1500", "--learning-starts", "200", "--num-envs", "2", "--hidden", "16",
             "--eval-every", "500", "--eval-episodes", "3", "--export-best", "true", "--no-progress", "--run-name", "b"]
    proc = cli_here(flags, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((tmp_path / "saved_models" / "b" / "tfpg_metadata.json").read_text())
    summary = json.loads((tmp_path / "runs" / "b" / "summary.json").read_text())
    assert meta["exported_from"]["eval_reward"] >= summary["eval_reward"]
    # the export scores its recorded evaluation on the same start states
    proc = cli_here([str(tmp_path / "saved_models" / "b"), "--episodes", "3", "--json"], cwd=tmp_path,
                    module="tfpg.evaluate")
    assert json.loads(proc.stdout.splitlines()[-1])["mean"] == pytest.approx(meta["exported_from"]["eval_reward"])


def test_skipped_dqn_steps_do_not_count_towards_target_syncs():
    """Was: a non-finite (skipped) step advanced the sync counter, so the target was re-synced early."""
    from tfpg.algos.dqn.algorithm import DQNUpdate, QPolicy

    keras.utils.set_random_seed(0)
    policy = QPolicy(OBS_SPACE, gym.spaces.Discrete(3), (8,))
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(policy.variables)
    update = DQNUpdate(policy, optimizer, 0.99, "mse", False, 0.0, target_sync=3, tau=1.0)
    rng = np.random.default_rng(0)
    shape = (2, 16)   # two gradient steps per call
    batch = TransitionBatch(rng.normal(size=(*shape, 4)).astype(np.float32), rng.integers(0, 3, shape),
                            rng.normal(size=shape).astype(np.float32), rng.normal(size=(*shape, 4)).astype(np.float32),
                            np.zeros(shape, bool), np.zeros(shape, bool))
    update(batch)                                   # 2 applied steps
    poisoned = TransitionBatch(*(np.copy(x) for x in vars(batch).values()))
    poisoned.rewards[:] = np.nan
    target_before = [w.copy() for w in policy.target_model.get_weights()]
    metrics = update(poisoned)                      # 2 skipped steps: no sync may happen
    assert int(metrics["skipped"]) == 2
    assert int(update.gradient_steps_done.numpy()) == 2 and int(update.target_syncs.numpy()) == 0
    for a, b in zip(policy.target_model.get_weights(), target_before):
        np.testing.assert_array_equal(a, b)
    update(TransitionBatch(*(x[:1] for x in vars(batch).values())))   # one step: the 3rd applied one syncs
    assert int(update.target_syncs.numpy()) == 1
    for a, b in zip(policy.target_model.get_weights(), policy.model.get_weights()):
        np.testing.assert_array_equal(a, b)


class NoModeVectorEnv(gym.vector.VectorEnv):
    """A vector env that does not say how it autoresets."""

    def __init__(self):
        self.num_envs = 2
        self.single_observation_space = OBS_SPACE
        self.single_action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(OBS_SPACE, 2)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 2)
        self.metadata = {}

    def reset(self, *, seed=None, options=None):
        return np.zeros((2, 4), np.float32), {}


def test_a_vector_env_that_does_not_declare_its_autoreset_mode_is_refused():
    """Was: assumed NEXT_STEP, so a SAME_STEP env would have had its first steps dropped silently."""
    with pytest.raises(ConfigError, match="does not declare its autoreset mode"):
        VecStepper(NoModeVectorEnv(), "NoMode-v0")
    same_step = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync",
                             vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    with pytest.raises(ConfigError, match="uses autoreset mode"):
        VecStepper(same_step, "CartPole-v1")
    same_step.close()


def test_bad_input_creates_no_config_json(tmp_path):
    """A refused option must leave no run folder behind (the --export-best crash had written config.json)."""
    proc = cli_here(["--algo", "dqn", "--export-best", "true", "--eval-every", "0", "--stop-on", "train"],
                    cwd=tmp_path)
    assert proc.returncode == 2 and os.listdir(tmp_path) == []


def test_the_entry_points_start_quietly(tmp_path):
    """No TensorFlow CUDA-stub or oneDNN lines on a machine without a GPU, unless asked for."""
    proc = run_cli(["--total-steps", "300", "--num-envs", "2", "--no-progress", "--no-export"], cwd=tmp_path)
    assert proc.returncode == 0
    assert "cuda" not in proc.stderr.lower() and "oneDNN" not in proc.stderr and "absl" not in proc.stderr
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["TFPG_TF_LOGS"] = "1"
    import subprocess
    import sys

    from conftest import ROOT
    loud = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--list-presets"], cwd=tmp_path,
                          env=dict(env, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=300)
    assert "oneDNN" in loud.stderr or "cuda" in loud.stderr.lower()   # what the filter removes by default


def test_hparams_are_real_hyperparameters_with_outcome_metrics(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    proc = cli_here(["--total-steps", "300", "--num-envs", "2", "--no-progress", "--no-export", "--run-name", "h"],
                    cwd=tmp_path)
    assert proc.returncode == 0
    experiment, session = None, None
    for name in [f for f in os.listdir(tmp_path / "runs" / "h") if ".tfevents." in f]:
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "runs" / "h" / name)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    experiment = data.experiment if data.HasField("experiment") else experiment
                    session = data.session_start_info if data.HasField("session_start_info") else session
    assert experiment is not None and session is not None
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert metrics == {"reward_100", "eval/reward", "loss_policy"}
    names = set(session.hparams)
    assert {"lr", "gamma", "num_envs", "seed", "env_id"} <= names
    assert not names & {"logdir", "export_dir", "run_name", "progress", "overwrite", "export"}
