"""train.py end to end, TensorBoard events, evaluation, and bad input."""
import glob
import json
import math
import os

import pytest
from conftest import run_cli

TINY = ["--total-steps", "3000", "--num-envs", "4", "--hidden", "16", "--seed", "1", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    proc = run_cli(TINY + ["--run-name", "tiny"], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


def test_tiny_run_writes_events_config_summary_and_export(tiny_run):
    cwd, proc = tiny_run
    run_dir, export = cwd / "runs" / "tiny", cwd / "saved_models" / "tiny"
    assert str(run_dir) in proc.stdout and str(export) in proc.stdout
    assert "tensorboard --logdir" in proc.stdout
    config = json.loads((run_dir / "config.json").read_text())
    assert config["total_steps"] == 3000 and config["hidden"] == [16] and config["num_envs"] == 4
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] >= 3000
    assert (export / "saved_model.pb").exists()
    meta = json.loads((export / "tfpg_metadata.json").read_text())
    assert meta["env_id"] == "CartPole-v1" and meta["env_steps"] == summary["env_steps"]
    assert meta["action_space"] == {"type": "Discrete", "n": 2}


def test_tensorboard_events_have_the_tags_with_finite_values(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cwd, _ = tiny_run
    acc = EventAccumulator(str(cwd / "runs" / "tiny"), size_guidance={"tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["tensors"])
    required = {"reward", "reward_100", "episodes", "loss_policy", "entropy", "steps_per_second",
                "loss_total", "kl", "grad_l2", "grad_max", "batch_scales", "batch_scales_std"}
    assert required <= tags, required - tags
    import tensorflow as tf

    for tag in required - {"reward_100"}:  # reward_100 appears once 1 episode ended
        events = acc.Tensors(tag)
        assert events, tag
        values = [float(tf.make_ndarray(e.tensor_proto)) for e in events]
        assert all(math.isfinite(v) for v in values), tag
        steps = [e.step for e in events]
        assert steps == sorted(steps) and steps[-1] >= 3000  # indexed by env steps
    # the hparams plugin recorded the configuration
    plugins = acc.PluginTagToContent("hparams")
    assert plugins


def test_evaluate_the_tiny_export(tiny_run):
    cwd, _ = tiny_run
    proc = run_cli([str(cwd / "saved_models" / "tiny"), "--episodes", "3", "--json"], cwd=cwd, module="tfpg.evaluate")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["returns"]) == 3 and all(r >= 1 for r in out["returns"])


def test_evaluate_refuses_mismatched_env(tiny_run):
    cwd, _ = tiny_run
    proc = run_cli([str(cwd / "saved_models" / "tiny"), "--env", "Acrobot-v1"], cwd=cwd, module="tfpg.evaluate")
    assert proc.returncode == 2
    assert "evaluate: error:" in proc.stderr and "Acrobot-v1" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--env", "CartPol-v1"], "unknown environment id 'CartPol-v1'; did you mean CartPole-v1"),
    (["--lr", "-0.1"], "--lr must be > 0.0"),
    (["--preset", "no-such-preset"], "unknown preset 'no-such-preset'"),
    (["--env", "Pendulum-v1", "--policy", "categorical"], "--policy categorical needs a Discrete action space"),
    (["--policy", "gaussian"], "--policy gaussian needs a Box action space, but the env has Discrete(2)"),
    (["--policy", "beta"], "invalid choice: 'beta'"),
    (["--returns", "lambda"], "--returns lambda needs a learned value function"),
    (["--eval-every", "-1"], "--eval-every must be a non-negative integer"),
    (["--export-best", "true"], "--export-best needs evaluations to choose from"),
    (["--gamma", "1.5"], "--gamma must be <= 1.0"),
    (["--num-envs", "0"], "--num-envs must be a positive integer"),
    (["--hidden", "12,x"], "expected layer widths"),
    (["--total-steps", "-5"], "--total-steps must be a positive integer"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_flags_fail_with_one_line_and_write_nothing(tmp_path, args, message):
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0] and "error:" in lines[0]
    assert os.listdir(tmp_path) == []


def test_help_documents_every_flag_with_its_default(tmp_path):
    proc = run_cli(["--help"], cwd=tmp_path)
    assert proc.returncode == 0
    for flag in ["--algo", "--env", "--preset", "--seed", "--total-steps", "--stop-reward", "--gamma", "--lr",
                 "--episodes-per-update", "--num-envs", "--hidden", "--logdir", "--export-dir", "--no-export"]:
        assert flag in proc.stdout, flag
    assert "default: 475.0" in proc.stdout and "default: CartPole-v1" in proc.stdout


def test_list_presets(tmp_path):
    proc = run_cli(["--list-presets"], cwd=tmp_path)
    assert proc.returncode == 0
    assert "seed000-cartpole-reinforce" in proc.stdout and "02_cartpole_reinforce" in proc.stdout


def test_no_export_and_existing_run_name(tmp_path):
    proc = run_cli(TINY + ["--total-steps", "500", "--no-export", "--run-name", "r"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "saved_models").exists()
    again = run_cli(TINY + ["--run-name", "r"], cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert glob.glob(str(tmp_path / "runs" / "*")) == [str(tmp_path / "runs" / "r")]
