"""Rollout workers on Ray (--workers): equal to in-process collection, reproducible, fault tolerant, multi-node.

One local Ray instance with 2 CPUs serves the tests of this module (the subprocess learners join it
with --ray-address); the multi-node test starts its own two-node cluster with Ray's test utility.
"""
import json
import logging
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, run_tensorflow_only

ray = pytest.importorskip("ray")

from tfpg.algos import REGISTRY  # noqa: E402
from tfpg.algos.reinforce import Reinforce  # noqa: E402
from tfpg.checks import prepare_paths  # noqa: E402
from tfpg.config import build_config  # noqa: E402
from tfpg.trainer import Trainer  # noqa: E402
from tfpg.workers import SyncCollector  # noqa: E402

SMALL = dict(num_envs=4, hidden=(16,), episodes_per_update=4, lr=0.01, stop_reward=None, progress=False)


@pytest.fixture(scope="module")
def ray_address():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             object_store_memory=100 * 2**20)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _trainer(tmp_path, name, algo="reinforce", resume=False, **values):
    config = build_config(algo, "CartPole-v1", None, dict(
        SMALL if algo == "reinforce" else dict(progress=False), logdir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "models"), run_name=name, **values))
    if resume:
        return Trainer(REGISTRY[algo], config, str(tmp_path / "runs" / name), str(tmp_path / "models" / name), True)
    return Trainer(REGISTRY[algo], config, *prepare_paths(config))


def _record(monkeypatch):
    """Every batch Reinforce trains on and every iteration's metrics, in order."""
    batches, losses = [], []
    collect, iteration = Reinforce.collect, Reinforce.iteration

    def recording_collect(self):
        batches.append(collect(self))
        return batches[-1]

    def recording_iteration(self):
        result = iteration(self)
        losses.append((result.metrics["loss_policy"], result.metrics["grad_l2"]))
        return result

    monkeypatch.setattr(Reinforce, "collect", recording_collect)
    monkeypatch.setattr(Reinforce, "iteration", recording_iteration)
    return batches, losses


def _logits(path, obs):
    return tf.saved_model.load(str(path)).signatures["distribution"](observations=tf.constant(obs))["logits"].numpy()


def test_one_worker_collects_and_learns_exactly_what_the_in_process_collector_does(tmp_path, monkeypatch, ray_address):
    runs = {}
    for name, workers in (("local", 0), ("ray", 1)):
        batches, losses = _record(monkeypatch)
        result = _trainer(tmp_path, name, seed=7, total_steps=1_500, workers=workers).run()
        runs[name] = (batches, losses, result)
        monkeypatch.undo()
    (local, local_losses, local_result), (remote, remote_losses, remote_result) = runs["local"], runs["ray"]
    assert len(local) == len(remote) >= 10
    for a, b in zip(local, remote):
        for field in ("observations", "actions", "returns"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert local_losses == remote_losses
    assert (local_result.env_steps, local_result.episodes) == (remote_result.env_steps, remote_result.episodes)


@pytest.fixture(scope="module")
def two_worker_reference(tmp_path_factory, ray_address):
    """A run with 2 workers x 2 envs and checkpoints every 1000 env steps (re-seeding the workers there)."""
    tmp_path = tmp_path_factory.mktemp("reference")
    result = _trainer(tmp_path, "ref", seed=3, total_steps=3_000, workers=2, envs_per_worker=2,
                      checkpoint_every=1_000).run()
    return tmp_path, result


def test_two_runs_with_two_workers_are_identical(tmp_path, two_worker_reference):
    reference_dir, reference = two_worker_reference
    again = _trainer(tmp_path, "again", seed=3, total_steps=3_000, workers=2, envs_per_worker=2,
                     checkpoint_every=1_000).run()
    assert (again.env_steps, again.episodes, again.reward_100) == (reference.env_steps, reference.episodes,
                                                                   reference.reward_100)
    obs = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_array_equal(_logits(tmp_path / "models" / "again", obs),
                                  _logits(reference_dir / "models" / "ref", obs))
    summary = json.loads((reference_dir / "runs" / "ref" / "summary.json").read_text())
    assert summary["workers"]["count"] == 2 and summary["workers"]["restarts"] == [0, 0]


def _complete_cartpole_episodes(batch) -> bool:
    """Every episode starts in CartPole's reset box (|s| <= 0.05) and ends at a failure or the 500-step limit."""
    starts = np.r_[0, np.cumsum(batch.lengths)[:-1]]
    first = batch.observations[starts]
    failed = (np.abs(batch.final_observations[:, 0]) > 2.4) | (np.abs(batch.final_observations[:, 2]) > 0.2095)
    return bool(np.all(np.abs(first) <= 0.05) and np.all(failed | (batch.lengths == 500))
                and np.array_equal(failed, batch.terminated))


def test_a_killed_worker_is_replaced_and_every_segment_counts_once(tmp_path, monkeypatch, ray_address):
    """Worker 1's process gets SIGKILL while the 3rd batch is being collected; its segment is collected
    again by its replacement, and the learner trains only on whole episodes, each once."""
    episodes = []
    collect, calls, pids = SyncCollector.collect, [], {}

    def killing_collect(self, **request):
        calls.append(None)
        if len(calls) == 3:
            pids["killed"] = ray.get(self.pool.actors[1].info.remote())["pid"]
            threading.Timer(0.02, os.kill, (pids["killed"], signal.SIGKILL)).start()
        batch = collect(self, **request)
        episodes.append(batch)
        return batch

    monkeypatch.setattr(SyncCollector, "collect", killing_collect)
    trainer = _trainer(tmp_path, "kill", seed=1, total_steps=3_000, workers=2, envs_per_worker=2,
                       episodes_per_update=40)
    result = trainer.run()
    assert result.env_steps >= 3_000
    assert trainer.workers.restarts == [0, 1]
    assert trainer.workers.placement[1]["pid"] != pids["killed"]
    assert all(_complete_cartpole_episodes(b) for b in episodes)
    trained = sum(b.num_episodes for b in episodes)
    assert trained == result.episodes                      # every episode counted once, and trained on once
    firsts = np.concatenate([b.observations[np.r_[0, np.cumsum(b.lengths)[:-1]]] for b in episodes])
    assert len(np.unique(firsts, axis=0)) == len(firsts)   # no segment handed over twice


def test_dqn_workers_fill_the_replay_with_as_many_transitions_as_env_steps(tmp_path, ray_address):
    values = dict(num_envs=2, hidden=(16,), learning_starts=200, train_freq=8, gradient_steps=4, batch_size=16,
                  eps_decay_steps=1_000, total_steps=2_500, eval_every=0, stop_on="train", stop_reward=None,
                  log_every=500)
    trainer = _trainer(tmp_path, "dqn", algo="dqn", seed=2, workers=2, **values)
    result = trainer.run()
    algo = trainer.algo
    assert result.env_steps >= 2_500
    assert algo.buffer.added == result.env_steps and len(algo.buffer) == result.env_steps
    # the ratio: 4 gradient steps per 8 vector steps of a worker's 2 envs after the 200 warm-up steps; a vector
    # step is 2 env steps but for the autoreset rows (one per episode)
    gradient_steps = int(algo.update.gradient_steps_done.numpy())
    per_row = values["gradient_steps"] / (values["train_freq"] * 2)
    chunk = 16 * 2 * 2    # a chunk of each worker may straddle the end of the warm-up
    assert per_row * (result.env_steps - 200 - chunk) <= gradient_steps <= per_row * (result.env_steps + result.episodes)
    assert result.episodes > 50 and np.isfinite(result.reward_100)


def _resume(run_dir):
    """What `train.py --resume RUN_DIR` does, in this process."""
    from tfpg.checks import check_resume
    from tfpg.trainer import train

    config, run_dir, export_path, validated = check_resume(str(run_dir), None, None, None, {})
    return train(config, run_dir, export_path, resume=True, validated=validated)


def test_resume_after_sigkill_of_the_learner_with_workers(tmp_path, monkeypatch, two_worker_reference, ray_address):
    reference_dir, reference = two_worker_reference
    flags = ["--num-envs", "4", "--hidden", "16", "--episodes-per-update", "4", "--lr", "0.01", "--seed", "3",
             "--workers", "2", "--envs-per-worker", "2", "--checkpoint-every", "1000", "--total-steps", "3000",
             "--ray-address", ray_address, "--no-progress", "--run-name", "k"]
    script = os.path.join(ROOT, "tests", "slow_writes.py")
    learner = subprocess.Popen([sys.executable, script, "0.01", *flags], cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=ROOT))
    for line in learner.stdout:
        if "checkpoint state updated" in line:
            break
    learner.send_signal(signal.SIGKILL)
    learner.wait()
    # resumed here (this process is already connected to the same Ray instance), to the same budget
    monkeypatch.chdir(tmp_path)   # the saved config's --logdir and --export-dir are relative
    resumed = _resume(tmp_path / "runs" / "k")
    assert (resumed.env_steps, resumed.episodes) == (reference.env_steps, reference.episodes)
    assert resumed.reward_100 == pytest.approx(reference.reward_100, abs=1e-9)
    obs = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_allclose(_logits(tmp_path / "saved_models" / "k", obs),
                               _logits(reference_dir / "models" / "ref", obs), rtol=1e-5, atol=1e-6)


TWO_NODES = r"""
import json, sys
from ray.cluster_utils import Cluster
from tfpg import cli
cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, object_store_memory=80 * 2**20))
cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
cluster.wait_for_nodes()
try:
    code = cli.main(sys.argv[1:] + ["--ray-address", cluster.address])
finally:
    cluster.shutdown()
sys.exit(code)
"""

LOADS = ("import json, sys, tensorflow as tf\n"
         "m = tf.saved_model.load(sys.argv[1])\n"
         "a = m.signatures['serving_default'](observations=tf.zeros([3, 4]))['action'].numpy()\n"
         "print(json.dumps({'actions': a.tolist(), 'tfpg': any(k.split('.')[0] == 'tfpg' for k in sys.modules)}))")


def test_two_node_cluster_trains_with_a_worker_on_each_node_and_exports(tmp_path):
    proc = subprocess.run([sys.executable, "-c", TWO_NODES, "--num-envs", "4", "--hidden", "16",
                           "--episodes-per-update", "8", "--lr", "0.02", "--seed", "0", "--total-steps", "3000",
                           "--workers", "2", "--no-progress", "--run-name", "nodes"],
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "runs" / "nodes" / "summary.json").read_text())
    assert summary["env_steps"] >= 3000 and len(set(summary["workers"]["nodes"])) == 2
    loaded = run_tensorflow_only(LOADS, tmp_path / "saved_models" / "nodes", cwd="/")
    assert len(loaded["actions"]) == 3 and not loaded["tfpg"]
