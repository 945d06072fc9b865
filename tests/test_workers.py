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
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, assert_same_checkpoint, run_tensorflow_only

ray = pytest.importorskip("ray")

from tfpg.cli import train as cli  # noqa: E402
from tfpg.algos.actor_critic import ActorCritic  # noqa: E402
from tfpg.algos.registry import REGISTRY  # noqa: E402
from tfpg.algos.reinforce.algorithm import Reinforce  # noqa: E402
from tfpg.core.checkpoint import latest_checkpoint  # noqa: E402
from tfpg.training.checks import check_resume, prepare_paths  # noqa: E402
from tfpg.algos.registry import build_config  # noqa: E402
from tfpg.training.trainer import Trainer  # noqa: E402
from tfpg.backends.ray.workers import SyncCollector  # noqa: E402

SMALL = dict(num_envs=4, hidden=(16,), episodes_per_update=4, lr=0.01, stop_reward=None, progress=False)
# PPO on 4 envs x 32 steps (128 per update) with the running observation statistics, whose values the workers
# get with the weights; the preset's linear schedules off, so that --total-steps does not change the updates.
PPO_FLAGS = ["--algo", "ppo", "--num-envs", "4", "--horizon", "32", "--hidden", "16", "--critic-hidden", "16",
             "--epochs", "2", "--minibatch-size", "64", "--normalize-obs", "true", "--normalize-reward", "true",
             "--linear-lr", "false",
             "--linear-clip", "false", "--eval-every", "0", "--no-progress"]


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


def _cli_trainer(tmp_path, name, flags):
    """The Trainer `train.py FLAGS` would run, writing under tmp_path."""
    args = cli.make_parser().parse_args([*flags, "--logdir", str(tmp_path / "runs"), "--export-dir",
                                         str(tmp_path / "models"), "--run-name", name])
    config, run_dir, export_path, _ = cli.configure(args)
    return Trainer(REGISTRY[config.algo], config, run_dir, export_path)


def _record(monkeypatch, algo: str, collecting_class, metrics: tuple[str, ...]):
    """Every batch `collecting_class.collect` hands to the algorithm and the named metrics of every iteration."""
    batches, losses = [], []
    algorithm = REGISTRY[algo]
    collect, iteration = collecting_class.collect, algorithm.iteration

    def recording_collect(self):
        batches.append(collect(self))
        return batches[-1]

    def recording_iteration(self):
        result = iteration(self)
        losses.append(tuple(result.metrics[name] for name in metrics))
        return result

    monkeypatch.setattr(collecting_class, "collect", recording_collect)
    monkeypatch.setattr(algorithm, "iteration", recording_iteration)
    return batches, losses


def _logits(path, obs):
    return tf.saved_model.load(str(path)).signatures["distribution"](observations=tf.constant(obs))["logits"].numpy()


EQUAL_RUNS = {   # algo: (what collects its batches, their fields, the metrics compared, the run's flags)
    "reinforce": (Reinforce, ("observations", "actions", "returns"), ("loss_policy", "grad_l2"), ["--num-envs", "4",
                  "--hidden", "16", "--episodes-per-update", "4", "--lr", "0.01", "--total-steps", "1500"]),
    "ppo": (ActorCritic, ("observations", "actions", "advantages", "returns", "values", "log_probs"),
            ("loss_policy", "value_loss", "approx_kl", "clip_fraction"), [*PPO_FLAGS, "--total-steps", "600"]),
}


@pytest.mark.parametrize("algo", sorted(EQUAL_RUNS))
def test_one_worker_collects_and_learns_exactly_what_the_in_process_collector_does(tmp_path, monkeypatch, ray_address,
                                                                                   algo):
    """REINFORCE's episodes, and PPO's fixed-horizon rollouts with the running observation statistics (which
    travel with the broadcast weights) and the truncation bootstrap (the observation after the cut comes back)."""
    collecting_class, fields, metrics, flags = EQUAL_RUNS[algo]
    runs = {}
    for name, workers in (("local", []), ("ray", ["--workers", "1"])):
        batches, losses = _record(monkeypatch, algo, collecting_class, metrics)
        result = _cli_trainer(tmp_path, name, [*flags, "--seed", "7", *workers]).run()
        runs[name] = (batches, losses, result)
        monkeypatch.undo()
    (local, local_losses, local_result), (remote, remote_losses, remote_result) = runs["local"], runs["ray"]
    assert len(local) == len(remote) >= 4
    for a, b in zip(local, remote):
        for field in fields:
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert local_losses == remote_losses
    assert (local_result.env_steps, local_result.episodes) == (remote_result.env_steps, remote_result.episodes)


def _complete_cartpole_episodes(batch) -> bool:
    """Every episode starts in CartPole's reset box (|s| <= 0.05) and ends at a failure or the 500-step limit."""
    starts = np.r_[0, np.cumsum(batch.lengths)[:-1]]
    first = batch.observations[starts]
    failed = (np.abs(batch.final_observations[:, 0]) > 2.4) | (np.abs(batch.final_observations[:, 2]) > 0.2095)
    return bool(np.all(np.abs(first) <= 0.05) and np.all(failed | (batch.lengths == 500))
                and np.array_equal(failed, batch.terminated))


def test_a_killed_worker_is_replaced_and_every_segment_counts_once(tmp_path, monkeypatch, ray_address):
    """Worker 1's process gets SIGKILL while the 3rd batch is being collected; its segment is collected
    again by its replacement, and the learner trains only on whole episodes, each once (also across the
    checkpoint, where the workers are re-seeded and drop the episodes they had begun)."""
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
                       episodes_per_update=40, checkpoint_every=1_500)   # re-seeding must drop the cut episodes
    result = trainer.run()
    assert result.env_steps >= 3_000
    assert trainer.experience.restarts == [0, 1]
    assert trainer.experience.placement[1]["pid"] != pids["killed"]
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


# PPO with 2 workers x 2 envs and a checkpoint every 500 env steps (the workers are re-seeded there)
PPO_TWO_WORKERS = [*PPO_FLAGS, "--seed", "4", "--workers", "2", "--envs-per-worker", "2", "--checkpoint-every", "500"]


@pytest.fixture(scope="module")
def ppo_reference(tmp_path_factory, ray_address):
    """Run A: PPO_TWO_WORKERS to 1000 env steps, here; its checkpoints and export are what runs B and C meet."""
    tmp_path = tmp_path_factory.mktemp("reference")
    result = _cli_trainer(tmp_path, "ref", [*PPO_TWO_WORKERS, "--total-steps", "1000"]).run()
    summary = json.loads((tmp_path / "runs" / "ref" / "summary.json").read_text())
    assert summary["workers"]["count"] == 2 and summary["workers"]["restarts"] == [0, 0]
    return tmp_path, result


def test_two_runs_with_two_workers_are_identical_and_resume_exactly_after_sigkill(tmp_path, monkeypatch, ray_address,
                                                                                  ppo_reference):
    """Run B, A's flags in a train.py process: SIGKILL once its first checkpoint is written, then resumed here.
    B's checkpoint is A's at the same step, tensor for tensor, and the resumed B ends exactly as A: two runs
    with the same seed and worker count are identical, and a resume continues one exactly."""
    reference_dir, reference = ppo_reference
    script = os.path.join(ROOT, "tests", "slow_writes.py")
    learner = subprocess.Popen([sys.executable, script, "0.01", *PPO_TWO_WORKERS, "--total-steps", "1000",
                                "--ray-address", ray_address, "--run-name", "k"], cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=ROOT))
    for line in learner.stdout:
        if "checkpoint state updated" in line:
            break
    learner.send_signal(signal.SIGKILL)
    learner.wait()
    first = latest_checkpoint(tmp_path / "runs" / "k")
    assert_same_checkpoint(first, reference_dir / "runs" / "ref" / "checkpoints" / os.path.basename(first))
    # resumed here (this process is already connected to the same Ray instance), to the same budget
    monkeypatch.chdir(tmp_path)   # the saved config's --logdir and --export-dir are relative
    config, run_dir, export_path, validated = check_resume(str(tmp_path / "runs" / "k"), None, None, None, {})
    resumed = Trainer(REGISTRY[config.algo], config, run_dir, export_path, True, validated).run()
    assert (resumed.env_steps, resumed.episodes, resumed.reward_100) == (reference.env_steps, reference.episodes,
                                                                         reference.reward_100)
    obs = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_array_equal(_logits(tmp_path / "saved_models" / "k", obs),
                                  _logits(reference_dir / "models" / "ref", obs))


def _rollout_worker_pids() -> set[int]:
    """Live processes that Ray titled as a RolloutWorker actor (a dead one's, a zombie's, title is empty)."""
    pids = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::RolloutWorker"):
                    pids.add(int(entry))
        except OSError:   # ended meanwhile
            pass
    return pids


def test_sigint_ends_a_ppo_run_with_two_workers_cleanly_and_resume_continues_it(tmp_path, monkeypatch, ray_address,
                                                                                 ppo_reference):
    """Ctrl-C (SIGINT to train.py's process group) once PPO with 2 workers (run C, A's flags but a budget it
    does not reach) has written its first checkpoint: the update finishes, the checkpoint and export are
    written, one line says so and the exit status is 130 (README, Reliability); no rollout worker outlives
    the run. Its first checkpoint is A's, tensor for tensor, and --resume continues from the interrupted step."""
    reference = min((ppo_reference[0] / "runs" / "ref" / "checkpoints").glob("ckpt-*.index"),
                    key=lambda path: int(path.stem.split("-")[1]))
    learner = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *PPO_TWO_WORKERS, "--total-steps",
                                "1000000", "--ray-address", ray_address, "--run-name", "sig"], cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=ROOT),
                               start_new_session=True)
    run_dir = tmp_path / "runs" / "sig"
    # Wait for the state file (a checkpoint is complete) while the learner runs; a bounded number of polls
    # guards against a hang without making the test depend on how fast the machine is.
    for _ in range(6000):
        if (run_dir / "checkpoints" / "checkpoint").exists():
            break
        assert learner.poll() is None, learner.communicate()[0][-3000:]
        time.sleep(0.05)
    workers = _rollout_worker_pids()
    os.killpg(learner.pid, signal.SIGINT)
    out = learner.communicate(timeout=300)[0]
    assert learner.returncode == 128 + signal.SIGINT, out[-3000:]
    said = [line for line in out.splitlines() if line.startswith("interrupted by SIGINT at ")]
    assert len(said) == 1 and "env steps; checkpoint and export written. Resume with: python train.py --resume" in said[0]
    steps = int(said[0].split()[4].replace(",", ""))
    assert os.path.basename(latest_checkpoint(run_dir)) == f"ckpt-{steps}"
    assert (tmp_path / "saved_models" / "sig" / "saved_model.pb").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["interrupted_by"], summary["env_steps"]) == (signal.SIGINT, steps)
    assert_same_checkpoint(reference.with_suffix(""), run_dir / "checkpoints" / reference.stem)
    assert len(workers) >= 2
    for _ in range(600):   # ray.kill is asynchronous: the worker processes end shortly after
        if not workers & _rollout_worker_pids():
            break
        time.sleep(0.1)
    assert not workers & _rollout_worker_pids()
    # --resume (here: this process is connected to the same Ray instance) with a budget 200 steps further
    monkeypatch.chdir(tmp_path)   # the saved config's --logdir and --export-dir are relative
    config, resumed_dir, export_path, validated = check_resume(str(run_dir), None, None, None,
                                                               {"total_steps": steps + 200})
    trainer = Trainer(REGISTRY[config.algo], config, resumed_dir, export_path, True, validated)
    assert (trainer.stepper.env_steps, trainer.stats.episodes) == (steps, summary["episodes"])
    resumed = trainer.run()
    assert resumed.interrupted_by is None and steps + 200 <= resumed.env_steps < steps + 200 + 128
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == resumed.env_steps


TWO_NODES = r"""
import json, sys
from ray.cluster_utils import Cluster
from tfpg.cli import train as cli
cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, object_store_memory=80 * 2**20,
                                                          include_dashboard=False))
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


# PPO on the test module's Corridor (learnable in a few thousand steps): 2 workers x 4 envs x 64 steps per update
CORRIDOR = dict(num_envs=4, horizon=64, hidden=(16,), critic_hidden=(16,), eval_every=0, seed=3, progress=False)


def _corridor_flags(tmp_path, env_id: str, *extra: str) -> list[str]:
    return ["--algo", "ppo", "--env", env_id, "--num-envs", "4", "--horizon", "64", "--hidden", "16",
            "--critic-hidden", "16", "--eval-every", "0", "--seed", "3", "--no-progress", "--logdir",
            str(tmp_path / "runs"), "--export-dir", str(tmp_path / "models"), "--run-name", "c", *extra]


def test_an_env_module_that_imports_in_the_learner_only_ends_the_run_in_one_line(tmp_path, monkeypatch, capsys,
                                                                                ray_address):
    """A module that exists only in the learner's process (as one defined in a notebook): its worker cannot import
    it, and says so in one line before anything is written."""
    import types

    import custom_envs  # noqa: F401 (registers tfpg_tests/Corridor-v0 here)
    import gymnasium as gym

    module = types.ModuleType("tfpg_learner_only_envs")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(gym.registry, "tfpg_tests/LearnerOnly-v0", gym.spec("tfpg_tests/Corridor-v0"))
    code = cli.main(_corridor_flags(tmp_path, "tfpg_learner_only_envs:tfpg_tests/LearnerOnly-v0", "--workers", "1"))
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "train.py: error: rollout worker 0 could not start (ModuleNotFoundError: No module named "
        "'tfpg_learner_only_envs'): the module tfpg_learner_only_envs of --env tfpg_learner_only_envs:"
        "tfpg_tests/LearnerOnly-v0 must be importable on every worker: install it there or put its folder on PYTHONPATH"]
    assert list(tmp_path.iterdir()) == []


def test_workers_that_ray_cannot_place_in_time_end_the_run_in_one_line(tmp_path, monkeypatch, capsys, ray_address):
    """The CPUs exist but are taken (a cluster's other jobs): a bounded wait, then one line; nothing written."""
    from ray.util.placement_group import placement_group, remove_placement_group

    from tfpg.backends.ray import workers

    taken = placement_group([{"CPU": 2}])
    ray.get(taken.ready(), timeout=60)
    monkeypatch.setattr(workers, "PLACEMENT_TIMEOUT_S", 1.0)
    try:
        code = cli.main(["--workers", "1", "--no-progress", "--logdir", str(tmp_path / "runs"), "--export-dir",
                         str(tmp_path / "models")])
    finally:
        remove_placement_group(taken)
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "train.py: error: Ray found no CPU for 1 rollout workers (one each) within 1 s: its nodes have 2 CPUs, 0 free; "
        "use fewer --workers, or add nodes or free CPUs (see `ray status`)"]
    assert list(tmp_path.iterdir()) == []


def test_two_workers_train_on_an_env_of_a_users_module_given_as_module_colon_id(tmp_path, monkeypatch, capsys,
                                                                                ray_address):
    """custom_envs imports in this process (tests/ is on its sys.path, not on PYTHONPATH) and, through the
    learner's sys.path handed to them, in the workers: PPO learns to walk the corridor and exports."""
    monkeypatch.chdir(tmp_path)
    code = cli.main(_corridor_flags(tmp_path, "custom_envs:tfpg_tests/Corridor-v0", "--workers", "2",
                                    "--total-steps", "3000"))
    assert code == 0, capsys.readouterr().err[-3000:]
    summary = json.loads((tmp_path / "runs" / "c" / "summary.json").read_text())
    assert summary["workers"]["count"] == 2 and summary["env_steps"] >= 3000
    assert summary["reward_100"] > 0.5   # mostly right: a random walk rarely reaches the end in 30 steps
    assert (tmp_path / "models" / "c" / "saved_model.pb").is_file()


def test_two_workers_train_on_a_python_env_factory_sent_to_them(tmp_path, monkeypatch, ray_address):
    """The Python API's route: Corridor (a class, so a zero-argument factory) registered as python/..., the run
    built and checked as `tfpg.PPO(Corridor, workers=2)` does; each worker registers the factory it was sent."""
    from custom_envs import Corridor

    from tfpg.envs.python_envs import register_python_env
    from tfpg.training.checks import check_run
    from tfpg.training.trainer import train

    monkeypatch.chdir(tmp_path)
    env_id = register_python_env(Corridor)
    config = build_config("ppo", env_id, None, dict(CORRIDOR, workers=2, total_steps=2000, run_name="f"))
    result = train(config, *check_run(config))
    summary = json.loads((tmp_path / "runs" / "f" / "summary.json").read_text())
    assert summary["workers"]["count"] == 2 and result.env_steps >= 2000 and result.episodes > 0
    assert (tmp_path / "saved_models" / "f" / "saved_model.pb").is_file()
