"""Checkpoints, resume, kills, interrupts, non-finite updates, atomic exports."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, assert_same_checkpoint, cli_here

from tfpg.training.checks import prepare_paths
from tfpg.training.trainer import train
from tfpg.algos.dqn.algorithm import DQN
from tfpg.algos.reinforce.algorithm import Reinforce
from tfpg.core.checkpoint import latest_checkpoint
from tfpg.algos.registry import build_config
from tfpg.core.errors import TrainingError

# A deterministic, quick configuration: few envs, small net, checkpoints every 4k steps.
SMALL = dict(num_envs=4, hidden=(32,), episodes_per_update=4, lr=0.01, stop_reward=None, checkpoint_every=4000)
SMALL_FLAGS = ["--num-envs", "4", "--hidden", "32", "--episodes-per-update", "4", "--lr", "0.01",
               "--checkpoint-every", "4000", "--seed", "3", "--no-progress"]


def _train(tmp_path, name, total_steps, resume=False, **extra):
    config = build_config("reinforce", "CartPole-v1", None, dict(
        SMALL, seed=3, total_steps=total_steps, progress=False, logdir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "models"), run_name=name, **extra))
    if resume:
        run_dir = str(tmp_path / "runs" / name)
        return train(config, run_dir, str(tmp_path / "models" / name), resume=True)
    return train(config, *prepare_paths(config))


def _logits(path, obs):
    return tf.saved_model.load(path).signatures["distribution"](observations=tf.constant(obs))["logits"].numpy()


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    full = _train(tmp_path, "full", 24_000)
    part = _train(tmp_path, "part", 12_000)            # ends right after its checkpoint at >= 12k
    assert part.env_steps < full.env_steps
    resumed = _train(tmp_path, "part", 24_000, resume=True)
    assert resumed.env_steps == full.env_steps          # ends exactly where the full run ended
    assert resumed.episodes == full.episodes
    assert resumed.reward_100 == pytest.approx(full.reward_100, abs=1e-9)
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_allclose(_logits(str(tmp_path / "models" / "part"), obs),
                               _logits(str(tmp_path / "models" / "full"), obs), rtol=1e-5, atol=1e-6)


def test_gaussian_resume_reproduces_the_uninterrupted_run(tmp_path):
    """Log-std, observation statistics, critic, lambda returns, minibatch shuffling, the sigma ceiling and the
    KL-adaptive lr (a tiny target KL, so that the lr does move) all resume exactly."""
    flags = dict(num_envs=2, hidden=(16,), policy="gaussian", normalize_obs=True, returns="lambda",
                 baseline="critic", critic_hidden=(16,), update="minibatch", minibatch_size=256, reuse_epochs=2,
                 steps_per_update=500, episodes_per_update=1, stop_reward=None, checkpoint_every=1000,
                 vector_mode="sync", lr=1e-3, target_kl=1e-4, kl_adaptive_lr=True, std_ceiling=0.6,
                 std_ceiling_steps=2000)

    def fit(name, total_steps, resume=False):
        config = build_config("reinforce", "LunarLanderContinuous-v3", None, dict(
            flags, seed=2, total_steps=total_steps, progress=False, logdir=str(tmp_path / "runs"),
            export_dir=str(tmp_path / "models"), run_name=name))
        if resume:
            return train(config, str(tmp_path / "runs" / name), str(tmp_path / "models" / name), resume=True)
        return train(config, *prepare_paths(config))

    full = fit("full", 3_000)
    part = fit("part", 1_500)
    resumed = fit("part", 3_000, resume=True)
    assert part.env_steps < full.env_steps and resumed.env_steps == full.env_steps
    obs = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    dist = [tf.saved_model.load(str(tmp_path / "models" / n)).signatures["distribution"](observations=tf.constant(obs))
            for n in ("full", "part")]
    for key in ("mean", "log_std"):
        np.testing.assert_allclose(dist[1][key].numpy(), dist[0][key].numpy(), rtol=1e-5, atol=1e-6)
    assert np.max(dist[0]["log_std"].numpy()) <= np.log(0.6) + 1e-6


# DQN: 2 envs, learning from 500 steps, 8 gradient steps every 8 vector steps, checkpoints every 2k.
SMALL_DQN = dict(num_envs=2, hidden=(32,), learning_starts=500, train_freq=8, gradient_steps=8, batch_size=32,
                 target_sync=16, eps_decay_steps=3000, eval_every=0, stop_on="train", stop_reward=None,
                 checkpoint_every=2000, log_every=500)


def _train_dqn(tmp_path, name, total_steps, resume=False, **extra):
    config = build_config("dqn", "CartPole-v1", None, dict(
        SMALL_DQN, seed=5, total_steps=total_steps, progress=False, logdir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "models"), run_name=name, **extra))
    if resume:
        return train(config, str(tmp_path / "runs" / name), str(tmp_path / "models" / name), resume=True)
    return train(config, *prepare_paths(config))


def _q_values(path, obs):
    return tf.saved_model.load(path).signatures["q_values"](observations=tf.constant(obs))["q_values"].numpy()


@pytest.mark.parametrize("replay", [True, False])
def test_dqn_resume_reproduces_the_uninterrupted_run(tmp_path, replay):
    """With the replay buffer in the checkpoint the resumed run is exact; without it, the buffer
    refills for --learning-starts steps with the current epsilon-greedy policy (not random play),
    no update happens until it is refilled, and the run still ends on its budget."""
    common = dict(checkpoint_replay=replay, log_every=100, checkpoint_every=1000)
    full = _train_dqn(tmp_path, "full", 4_000, **common)
    part = _train_dqn(tmp_path, "part", 2_000, **common)
    part_checkpoint_step = int(latest_checkpoint(str(tmp_path / "runs" / "part")).rsplit("-", 1)[1])
    resumed = _train_dqn(tmp_path, "part", 4_000, resume=True, **common)
    assert part.env_steps < full.env_steps
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    q_full, q_resumed = _q_values(str(tmp_path / "models" / "full"), obs), _q_values(str(tmp_path / "models" / "part"), obs)
    if replay:
        assert resumed.env_steps == full.env_steps and resumed.episodes == full.episodes
        np.testing.assert_allclose(q_resumed, q_full, rtol=1e-4, atol=1e-5)
    else:   # other experience after the resume, so other episode ends; the budget still holds
        assert 4_000 <= resumed.env_steps < 4_000 + SMALL_DQN["num_envs"]
        assert not np.allclose(q_resumed, q_full, rtol=1e-4, atol=1e-5)
        # the resumed process's own events: refill steps act at the schedule's epsilon, not 1, and
        # the buffer grows from empty with no gradient step taken
        start = part_checkpoint_step
        refill = [(step, values) for step, values in _newest_scalars(tmp_path / "runs" / "part")
                  if step < start + SMALL_DQN["learning_starts"]]
        assert refill, "no log point during the refill"
        for step, values in refill:
            schedule = max(0.05, 1 - 0.95 * step / SMALL_DQN["eps_decay_steps"])
            assert values["epsilon"] == pytest.approx(schedule, abs=0.01), (step, values)
            assert values["buffer_size"] <= step - start
            assert values["gradient_steps"] == refill[0][1]["gradient_steps"]


def _newest_scalars(run_dir):
    """[(step, {tag: value})] from the newest events file of a run (the last process's own log)."""
    newest = sorted(f for f in os.listdir(run_dir) if ".tfevents." in f)[-1]
    by_step = {}
    for event in tf.compat.v1.train.summary_iterator(os.path.join(run_dir, newest)):
        for value in event.summary.value:
            by_step.setdefault(event.step, {})[value.tag] = float(tf.make_ndarray(value.tensor))
    return sorted(by_step.items())


def _poison(monkeypatch, cls, method, updates, spoil):
    """Make `cls.method`'s result non-finite (via `spoil`) on the calls numbered `updates` (0-based):
    the algorithms call it once per update."""
    original, calls = getattr(cls, method), []

    def poisoned(self, *args):
        out = original(self, *args)
        calls.append(None)
        return spoil(out) if len(calls) - 1 in updates else out

    monkeypatch.setattr(cls, method, poisoned)


def _nan_rewards(batch):
    batch.rewards[:] = np.nan
    return batch


def test_dqn_poisoned_update_is_skipped_and_counted(tmp_path, monkeypatch):
    _poison(monkeypatch, DQN, "sample", {3}, _nan_rewards)
    _train_dqn(tmp_path, "dqn-nan", 2_000)
    summary = json.loads((tmp_path / "runs" / "dqn-nan" / "summary.json").read_text())
    assert summary["nonfinite_updates"] == 1
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    assert np.isfinite(_q_values(str(tmp_path / "models" / "dqn-nan"), obs)).all()


def _spawn(args, cwd, checkpoint_delay: float):
    """train.py ARGS in a subprocess whose checkpoint writes are slowed and announced (tests/slow_writes.py)."""
    script = os.path.join(ROOT, "tests", "slow_writes.py")
    return subprocess.Popen([sys.executable, script, str(checkpoint_delay), *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=ROOT))


def _wait_for(proc, marker, count=1):
    seen = 0
    for line in proc.stdout:
        if marker in line:
            seen += 1
            if seen == count:
                return line
    raise AssertionError(f"process ended before printing {marker!r} x{count}")


def _all_checkpoints_load(run_dir):
    state = tf.train.get_checkpoint_state(os.path.join(run_dir, "checkpoints"))
    for prefix in state.all_model_checkpoint_paths:
        path = prefix if os.path.isabs(prefix) else os.path.join(run_dir, "checkpoints", prefix)
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                assert np.isfinite(value).all(), (path, name)


def test_sigkill_at_several_points_then_resume_completes_exactly(tmp_path):
    budget = ["--total-steps", "30000"]
    ref = cli_here(SMALL_FLAGS + budget + ["--run-name", "ref"], cwd=tmp_path)   # the kills need processes; these not
    assert ref.returncode == 0, ref.stdout + ref.stderr
    reference = json.loads((tmp_path / "runs" / "ref" / "summary.json").read_text())

    run = ["--run-name", "k"]
    # 1. killed while its 2nd checkpoint is being written (data files on disk, state file not yet updated)
    p = _spawn(SMALL_FLAGS + budget + run, tmp_path, checkpoint_delay=3)
    _wait_for(p, "checkpoint data written", count=2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    _all_checkpoints_load(str(tmp_path / "runs" / "k"))
    # 2. resumed, then killed just after a checkpoint was completed
    p = _spawn(["--resume", "runs/k", "--no-progress"], tmp_path, checkpoint_delay=0.01)
    _wait_for(p, "checkpoint state updated", count=2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    _all_checkpoints_load(str(tmp_path / "runs" / "k"))
    # 3. resumed again, killed while writing the next checkpoint
    p = _spawn(["--resume", "runs/k", "--no-progress"], tmp_path, checkpoint_delay=3)
    _wait_for(p, "checkpoint data written")
    p.send_signal(signal.SIGKILL)
    p.wait()
    # 4. resumed to the end of the budget
    done = cli_here(["--resume", "runs/k", "--no-progress"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "runs" / "k" / "summary.json").read_text())
    assert summary["env_steps"] == reference["env_steps"]      # exact final step count
    assert summary["episodes"] == reference["episodes"]        # reward_100 history carried over
    assert summary["reward_100"] == pytest.approx(reference["reward_100"], abs=1e-9)
    _all_checkpoints_load(str(tmp_path / "runs" / "k"))
    # the same policy: the final export's logits equal the uninterrupted run's
    obs = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_allclose(_logits(str(tmp_path / "saved_models" / "k"), obs),
                               _logits(str(tmp_path / "saved_models" / "ref"), obs), rtol=1e-5, atol=1e-6)


def test_sigint_leaves_a_loadable_export_and_a_resumable_checkpoint(tmp_path):
    p = _spawn(SMALL_FLAGS + ["--total-steps", "400000", "--run-name", "i"], tmp_path, checkpoint_delay=0.01)
    _wait_for(p, "checkpoint state updated")
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 130, out
    assert "Resume with: python train.py --resume" in out
    export = tmp_path / "saved_models" / "i"
    loaded = tf.saved_model.load(str(export))
    assert loaded.greedy(np.zeros((2, 4), np.float32))["action"].shape == (2,)
    summary = json.loads((tmp_path / "runs" / "i" / "summary.json").read_text())
    assert 0 < summary["env_steps"] < 400000
    resumed = cli_here(["--resume", "runs/i", "--total-steps", str(summary["env_steps"] + 3000), "--no-progress"],
                       cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "runs" / "i" / "summary.json").read_text())["env_steps"] > summary["env_steps"]


def test_a_poisoned_update_is_skipped_and_counted(tmp_path, monkeypatch):
    _poison(monkeypatch, Reinforce, "advantages", {2}, lambda a: np.full_like(a, np.nan))
    result = _train(tmp_path, "nan1", 3000)
    summary = json.loads((tmp_path / "runs" / "nan1" / "summary.json").read_text())
    assert summary["nonfinite_updates"] == 1 and result.env_steps >= 3000
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    assert np.isfinite(_logits(str(tmp_path / "models" / "nan1"), obs)).all()


def test_k_nonfinite_updates_in_a_row_stop_with_the_last_good_checkpoint_intact(tmp_path, monkeypatch):
    _poison(monkeypatch, Reinforce, "advantages", {3, 4, 5}, lambda a: np.full_like(a, np.nan))
    with pytest.raises(TrainingError, match="3 updates in a row had a non-finite"):
        _train(tmp_path, "nan3", 100_000, checkpoint_every=1, max_nonfinite=3)
    _all_checkpoints_load(str(tmp_path / "runs" / "nan3"))
    assert not (tmp_path / "models" / "nan3").exists()


# Exports a small policy; with a delay, announces and widens the windows of a replacing export
# (wrapping tfpg.export.saved_model._swap_into_place and, inside it, os.rename: production code has no hook).
EXPORTER = r"""
import os, sys, time, gymnasium as gym, numpy as np
from tfpg.export import saved_model as export
from tfpg.export.saved_model import export_policy
from tfpg.models.policies import CategoricalPolicy
delay = float(sys.argv[3])
swap, rename = export._swap_into_place, os.rename
def slow_rename(src, dst):
    rename(src, dst)
    if ".old-" in dst:
        print("tfpg-test: old export moved aside", flush=True)
        time.sleep(delay)
def slow_swap(staged, path):
    print("tfpg-test: export staged", flush=True)
    time.sleep(delay)
    os.rename = slow_rename
    swap(staged, path)
if delay:
    export._swap_into_place = slow_swap
policy = CategoricalPolicy(gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2), hidden=(8,), seed=0)
export_policy(policy, {"env_id": "CartPole-v1", "generation": int(sys.argv[2])}, sys.argv[1], overwrite=True)
print("tfpg-test: export done", flush=True)
"""


def _export_generation(target: str, generation: int) -> None:
    """EXPORTER's export without the delays, in this process (only the killed export needs a process of its own)."""
    import gymnasium as gym

    from tfpg.export.saved_model import export_policy
    from tfpg.models.policies import CategoricalPolicy

    policy = CategoricalPolicy(gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2), hidden=(8,), seed=0)
    export_policy(policy, {"env_id": "CartPole-v1", "generation": generation}, target, overwrite=True)


@pytest.mark.parametrize("marker, expect", [("export staged", "old"), ("old export moved aside", "none")])
def test_a_killed_export_leaves_the_old_export_or_none(tmp_path, marker, expect):
    target = str(tmp_path / "model")
    env = dict(os.environ, PYTHONPATH=ROOT)
    _export_generation(target, 1)
    p = subprocess.Popen([sys.executable, "-c", EXPORTER, target, "2", "3"], text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=env)
    _wait_for(p, marker)
    p.send_signal(signal.SIGKILL)
    p.wait()
    if expect == "old":
        from tfpg.export.saved_model import read_metadata

        assert read_metadata(target)["generation"] == 1
        tf.saved_model.load(target)
    else:
        assert not os.path.exists(target)
    # the next export cleans up what the killed one left behind
    _export_generation(target, 3)
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_a_signal_right_after_a_checkpoint_keeps_that_checkpoint(tmp_path, monkeypatch):
    """SIGINT landing between a checkpoint and the next update (the envs have just restarted, which zeroes the
    reward normaliser's running returns): the run ends on that checkpoint as written, identical to the
    uninterrupted run's at the same step, and a resume from it ends exactly where the uninterrupted run does."""
    from tfpg.training.trainer import Trainer

    def ppo(name, total_steps, resume=False):
        config = build_config("ppo", "CartPole-v1", None, dict(
            num_envs=2, horizon=64, hidden=(16,), critic_hidden=(16,), epochs=1, minibatch_size=64,
            normalize_reward=True, eval_every=0, checkpoint_every=500, seed=5, total_steps=total_steps,
            progress=False, logdir=str(tmp_path / "runs"), export_dir=str(tmp_path / "models"), run_name=name))
        if resume:
            return train(config, str(tmp_path / "runs" / name), str(tmp_path / "models" / name), resume=True)
        return train(config, *prepare_paths(config))

    full = ppo("full", 1200)
    save = Trainer.save_checkpoint

    def save_then_signal(self, run_dir=None):
        prefix = save(self, run_dir)
        self.signals.received = signal.SIGINT   # as if Ctrl-C came while the envs restarted
        return prefix

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_signal)
    cut = ppo("cut", 1200)
    monkeypatch.undo()
    first = f"ckpt-{cut.env_steps}"
    assert cut.interrupted_by == signal.SIGINT and 500 <= cut.env_steps < 1200
    written = sorted(os.listdir(tmp_path / "runs" / "cut" / "checkpoints"))
    assert [name for name in written if name.endswith(".index")] == [first + ".index"]
    assert_same_checkpoint(tmp_path / "runs" / "full" / "checkpoints" / first,
                           tmp_path / "runs" / "cut" / "checkpoints" / first)
    resumed = ppo("cut", 1200, resume=True)
    assert (resumed.env_steps, resumed.episodes) == (full.env_steps, full.episodes)
    obs = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_array_equal(_logits(str(tmp_path / "models" / "cut"), obs),
                                  _logits(str(tmp_path / "models" / "full"), obs))
