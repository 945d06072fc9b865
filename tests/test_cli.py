"""train.py end to end, TensorBoard events, evaluation, and bad input."""
import glob
import json
import math
import os

import numpy as np
import pytest
from conftest import cli_here, run_cli

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
    proc = cli_here([str(cwd / "saved_models" / "tiny"), "--episodes", "3", "--json"], cwd=cwd, module="tfpg.evaluate")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # episode k is the greedy episode from reset seed 1000000 + k, played here with the loaded model
    import gymnasium as gym
    import tensorflow as tf

    loaded = tf.saved_model.load(str(cwd / "saved_models" / "tiny"))
    expected = []
    for k in range(3):
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=1_000_000 + k)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(int(loaded.greedy(obs[None].astype(np.float32))["action"][0]))
            total, done = total + r, term or trunc
        expected.append(total)
    assert out["returns"] == expected


def test_evaluate_refuses_mismatched_env(tiny_run):
    cwd, _ = tiny_run
    proc = cli_here([str(cwd / "saved_models" / "tiny"), "--env", "Acrobot-v1"], cwd=cwd, module="tfpg.evaluate")
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
    (["--std-ceiling", "0.2"], "--std-ceiling applies to the gaussian policy (Box actions), but CartPole-v1 gets"),
    (["--eval-every", "-1"], "--eval-every must be a non-negative integer"),
    (["--export-best", "true"], "--export-best needs evaluations to choose from"),
    (["--gamma", "1.5"], "--gamma must be <= 1.0"),
    (["--num-envs", "0"], "--num-envs must be a positive integer"),
    (["--hidden", "12,x"], "expected layer widths"),
    (["--total-steps", "-5"], "--total-steps must be a positive integer"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_flags_fail_with_one_line_and_write_nothing(tmp_path, args, message):
    # in this process (what is tested is the message); a fresh process's exit 2 without a traceback:
    # tests/test_custom_envs.py
    proc = cli_here(args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0] and "error:" in lines[0]
    assert os.listdir(tmp_path) == []


def test_help_documents_every_flag_with_its_default(tmp_path):
    proc = cli_here(["--help"], cwd=tmp_path)
    assert proc.returncode == 0
    for flag in ["--algo", "--env", "--preset", "--seed", "--total-steps", "--stop-reward", "--gamma", "--lr",
                 "--episodes-per-update", "--num-envs", "--hidden", "--logdir", "--export-dir", "--no-export"]:
        assert flag in proc.stdout, flag
    text = " ".join(proc.stdout.split())   # argparse wraps to the terminal's width
    assert "default: CartPole-v1" in text and "runs the preset cartpole-reinforce" in text
    assert "(default: 0.001 (reinforce), 0.00063 (dqn), " in text   # per-algorithm dataclass defaults


def test_list_presets(tmp_path):
    proc = cli_here(["--list-presets"], cwd=tmp_path)
    assert proc.returncode == 0
    assert "book-cartpole-reinforce" in proc.stdout and "02_cartpole_reinforce" in proc.stdout


def test_no_export_and_existing_run_name(tmp_path):
    proc = cli_here(TINY + ["--total-steps", "500", "--no-export", "--run-name", "r"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "saved_models").exists()
    again = cli_here(TINY + ["--run-name", "r"], cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert glob.glob(str(tmp_path / "runs" / "*")) == [str(tmp_path / "runs" / "r")]


DQN_TINY = ["--algo", "dqn", "--total-steps", "1200", "--learning-starts", "200", "--num-envs", "2", "--hidden", "16",
            "--seed", "1", "--no-progress", "--eval-every", "600", "--eval-episodes", "2", "--log-every", "100",
            "--train-freq", "2", "--gradient-steps", "2", "--target-sync", "20"]


@pytest.fixture(scope="module")
def dqn_tiny_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli_dqn")
    proc = cli_here(DQN_TINY + ["--run-name", "dqn"], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


def test_dqn_tiny_run_end_to_end(dqn_tiny_run):
    cwd, _ = dqn_tiny_run
    run_dir, export = cwd / "runs" / "dqn", cwd / "saved_models" / "dqn"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["algo"] == "dqn" and config["learning_starts"] == 200 and config["buffer_size"] == 50_000
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] >= 1200 and summary["evaluations"] == 2 and summary["eval_env_steps"] >= 1200
    meta = json.loads((export / "tfpg_metadata.json").read_text())
    assert meta["algorithm"] == "dqn" and meta["policy"] == "q_greedy" and meta["eval_reward"] == summary["eval_reward"]
    proc = cli_here([str(export), "--episodes", "3", "--json"], cwd=cwd, module="tfpg.evaluate")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["returns"]) == 3
    # the default seeds are the training evaluations' seeds: the same 2 episodes give eval_reward
    same = cli_here([str(export), "--episodes", "2", "--json"], cwd=cwd, module="tfpg.evaluate")
    assert json.loads(same.stdout.strip().splitlines()[-1])["mean"] == summary["eval_reward"]
    stochastic = cli_here([str(export), "--stochastic"], cwd=cwd, module="tfpg.evaluate")
    assert stochastic.returncode == 2 and "drop --stochastic" in stochastic.stderr


def test_dqn_tensorboard_tags(dqn_tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cwd, _ = dqn_tiny_run
    acc = EventAccumulator(str(cwd / "runs" / "dqn"), size_guidance={"tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["tensors"])
    required = {"td_loss", "epsilon", "q_mean", "reward", "reward_100", "episodes", "steps_per_second",
                "target_syncs", "eval/reward", "eval/reward_std"}
    assert required <= tags, required - tags
    import tensorflow as tf

    eps = [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("epsilon")]
    assert eps == sorted(eps, reverse=True) and eps[0] == 1.0
    syncs = [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("target_syncs")]
    assert syncs[-1] > 0
    evals = acc.Tensors("eval/reward")
    assert [e.step for e in evals][0] >= 600 and len(evals) == 2


def test_dqn_rejects_continuous_actions(tmp_path):
    proc = cli_here(["--algo", "dqn", "--env", "Pendulum-v1"], cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--algo dqn needs a Discrete action space" in lines[0] and "Pendulum-v1" in lines[0]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, message", [
    (["--algo", "dqn", "--loss", "l1"], "invalid choice: 'l1'"),
    (["--algo", "dqn", "--tau", "0"], "--tau must be > 0.0"),
    (["--algo", "dqn", "--eps-end", "1.5"], "--eps-end must be <= 1.0"),
    (["--algo", "dqn", "--eps-schedule", "exponential", "--eps-end", "0"], "--eps-schedule exponential needs"),
    (["--algo", "dqn", "--target-sync", "0"], "--target-sync must be a positive integer"),
    (["--algo", "dqn", "--eval-every", "0"], "--stop-on eval needs greedy evaluations"),
    (["--algo", "reinforce", "--eps-start", "0.5"], "--eps-start does not apply to --algo reinforce"),
])
def test_dqn_bad_flags(tmp_path, args, message):
    proc = cli_here(args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert os.listdir(tmp_path) == []


def test_hwang_dqn_preset_is_pinned():
    from tfpg.algos import presets
    from tfpg.algos.registry import build_config

    preset = presets()["hwang-dqn-cartpole"]
    assert preset.algo == "dqn" and "Reinforcement Learning_[5]" in preset.source
    config = build_config(None, None, "hwang-dqn-cartpole", {})
    assert (config.buffer_size, config.target_sync, config.tau, config.gamma, config.loss, config.double) == \
        (50_000, 10, 1.0, 0.99, "mse", False)
    assert config.learning_starts > 0 and config.eps_start > config.eps_end
    assert config.env_id == "CartPole-v1" and config.num_envs == 1


def test_dqn_default_preset_and_help(tmp_path):
    from tfpg.algos.registry import build_config

    config = build_config("dqn", None, None, {})
    assert config.stop_on == "eval" and config.eval_every > 0 and config.stop_reward == 475
    proc = cli_here(["--help"], cwd=tmp_path)
    for flag in ["--buffer-size", "--learning-starts", "--train-freq", "--gradient-steps", "--target-sync", "--tau",
                 "--loss", "--double", "--eps-start", "--eps-end", "--eps-decay-steps", "--eps-schedule",
                 "--eval-every", "--eval-episodes", "--stop-on", "--batch-size"]:
        assert flag in proc.stdout, flag
    assert "(default: None)" not in proc.stdout
    listing = cli_here(["--list-presets"], cwd=tmp_path)
    assert "hwang-dqn-cartpole" in listing.stdout and "dqn-cartpole" in listing.stdout


def test_the_closing_message_of_a_k_agent_run_names_an_agents_export(tmp_path, capsys):
    """--num-seeds K > 1 exports to EXPORT/seed_<s>: 'evaluate it' must name a folder that holds a SavedModel."""
    from tfpg.cli.train import report
    from tfpg.training.loop import RunResult

    for s in (10, 9):
        os.makedirs(tmp_path / "export" / f"seed_{s}")
        (tmp_path / "export" / f"seed_{s}" / "saved_model.pb").write_bytes(b"")
    report(RunResult(str(tmp_path / "runs" / "r"), str(tmp_path / "export"), 100, 3, 20.0, False, 1.0))
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("evaluate it:")][0]
    assert line.split()[5] == str(tmp_path / "export" / "seed_9") and "other 1 seed_<s>" in line
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "saved_model.pb").write_bytes(b"")
    report(RunResult(str(tmp_path / "runs" / "r"), str(tmp_path / "single"), 100, 3, 20.0, False, 1.0))
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("evaluate it:")][0]
    assert line == f"evaluate it:        python -m tfpg.evaluate {tmp_path / 'single'}"
