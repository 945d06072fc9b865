"""A user's own envs (issue 30): module:EnvId and --env-module, --env-kwargs, the fatal checks before anything is
written, and an env that fails in the middle of a run. The envs are tests/custom_envs.py's."""
import json
import os
import subprocess
import sys

import custom_envs
import gymnasium as gym
import numpy as np
import pytest
from conftest import ROOT, TESTS

from tfpg.cli import train
from tfpg.cli.evaluate import evaluate
from tfpg.envs import checker

PREFIX = "custom_envs:tfpg_tests/"
TINY = ["--num-envs", "2", "--hidden", "16", "--steps-per-update", "100", "--no-progress"]


def run(tmp_path, *args) -> int:
    return train.main([*args, "--logdir", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "models")])


def error_line(capsys) -> str:
    """The one line train.py wrote to stderr (asserted to be one)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: "), lines
    return lines[0]


@pytest.mark.parametrize("name, problem", [
    ("WrongShape", "reset() returned an observation of shape (3,), but its observation_space is "
                   "Box(0.0, 1.0, (2,), float32)"),
    ("WrongDtype", "reset() returned an observation of dtype float64, but its observation_space is "
                   "Box(0.0, 1.0, (2,), float32)"),
    ("NoInfoReset", "reset() returned a ndarray, not (observation, info) with info a dict"),
    ("FourValueStep", "step() returned a tuple of 4 values, not the five values"),
])
def test_a_broken_env_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys, name, problem):
    assert run(tmp_path, "--env", f"{PREFIX}{name}-v0") == 2
    assert error_line(capsys).startswith(f"train.py: error: {PREFIX}{name}-v0: {problem}")
    assert os.listdir(tmp_path) == []


def test_env_module_is_the_module_prefix_and_not_both(tmp_path, capsys):
    assert run(tmp_path, "--env-module", "custom_envs", "--env", "tfpg_tests/WrongShape-v0") == 2
    assert f"error: {PREFIX}WrongShape-v0: reset() returned an observation of shape (3,)" in error_line(capsys)
    assert run(tmp_path, "--env-module", "custom_envs", "--env", f"{PREFIX}Corridor-v0") == 2
    assert "names its module already: drop --env-module custom_envs" in error_line(capsys)
    assert os.listdir(tmp_path) == []


def test_a_module_that_does_not_import_and_an_unknown_id_are_named(tmp_path, capsys):
    assert run(tmp_path, "--env", "no_such_tfpg_module:Foo-v0") == 2
    assert error_line(capsys) == ("train.py: error: no_such_tfpg_module:Foo-v0: cannot import module "
                                  "'no_such_tfpg_module' (ModuleNotFoundError: No module named "
                                  "'no_such_tfpg_module'): install it or put it on PYTHONPATH")
    assert run(tmp_path, "--env", f"{PREFIX}Coridor-v0") == 2
    assert f"did you mean {PREFIX}Corridor-v0" in error_line(capsys)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("item, problem", [
    ("length=six", "length=six: 'six' is not a Python literal (quote strings: length='six')"),
    ("length", "length: expected KEY=VALUE"),
    ("length={1}", "length={1}: a set cannot be saved in config.json"),
])
def test_env_kwargs_that_are_not_literals_are_refused(tmp_path, capsys, item, problem):
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path, "--env", f"{PREFIX}Corridor-v0", "--env-kwargs", item)
    assert exit_.value.code == 2
    assert problem in error_line(capsys)
    assert os.listdir(tmp_path) == []


def test_env_kwargs_that_the_constructor_does_not_take_are_named(tmp_path, capsys):
    assert run(tmp_path, "--env", f"{PREFIX}Corridor-v0", "--env-kwargs", "lenght=4") == 2
    line = error_line(capsys)
    assert f"cannot build {PREFIX}Corridor-v0 with --env-kwargs lenght=4 (TypeError:" in line
    assert "unexpected keyword argument 'lenght'" in line


def test_gymnasiums_own_envs_are_trusted_and_findings_that_training_survives_are_warnings(monkeypatch):
    class OutOfBounds(custom_envs.Corridor):
        def _obs(self):
            return np.array([2.0, 0.0], dtype=np.float32)

    monkeypatch.setitem(gym.registry, "tfpg_tests/OutOfBounds-v0",
                        gym.envs.registration.EnvSpec("tfpg_tests/OutOfBounds-v0", entry_point=OutOfBounds))
    assert checker.check_users_env("tfpg_tests/OutOfBounds-v0") == [
        "tfpg_tests/OutOfBounds-v0: AssertionError: The first element returned by `env.reset()` is not within the "
        "observation space."]

    def refuse(env_id, env):
        raise AssertionError("gymnasium's own env was checked")

    monkeypatch.setattr(checker, "check_api", refuse)
    assert checker.check_users_env("CartPole-v1") == []
    with pytest.raises(AssertionError):
        checker.check_users_env(f"{PREFIX}Corridor-v0")


def test_a_broken_env_exits_2_without_a_traceback_in_a_fresh_process(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, TESTS]))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--env", f"{PREFIX}FourValueStep-v0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"train.py: error: {PREFIX}FourValueStep-v0: step() "
                                                           "returned a tuple of 4 values")
    assert os.listdir(tmp_path) == []


def forget_custom_envs(monkeypatch):
    """This process as a fresh one sees it: tests/custom_envs.py not imported, its ids not registered."""
    monkeypatch.delitem(sys.modules, "custom_envs")
    for env_id in [i for i in gym.registry if i.startswith("tfpg_tests/")]:
        monkeypatch.delitem(gym.registry, env_id)


def test_an_env_failing_mid_run_stops_it_in_one_line_and_the_run_resumes_after_the_fix(tmp_path, capsys,
                                                                                          monkeypatch):
    """FailingCorridor raises after $TFPG_TEST_FAIL_AT steps; with length=1 every episode is one step of reward 1,
    which shows --env-kwargs reached the envs of the first run, of the resumed one and of the export's evaluation."""
    monkeypatch.setitem(custom_envs._steps, "n", 0)
    monkeypatch.setenv(custom_envs.FAIL_AT, "450")
    flags = ["--env", f"{PREFIX}FailingCorridor-v0", "--env-kwargs", "length=1", "--total-steps", "600",
             "--checkpoint-every", "200", "--run-name", "r", *TINY]
    assert run(tmp_path, *flags) == 1
    line = error_line(capsys)
    run_dir = tmp_path / "runs" / "r"
    assert line.startswith(f"train.py: error: {PREFIX}FailingCorridor-v0: step() raised at env step ")
    assert line.endswith(f": RuntimeError: the corridor collapsed; the last good checkpoint is ckpt-400; fix the "
                         f"cause, then finish the run and its export with: python train.py --resume {run_dir}")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env_id"] == f"{PREFIX}FailingCorridor-v0" and config["env_kwargs"] == {"length": 1}

    monkeypatch.delenv(custom_envs.FAIL_AT)   # the fix
    assert train.main(["--resume", str(run_dir), "--no-progress"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] >= 600 and summary["episodes"] == summary["env_steps"]
    export = tmp_path / "models" / "r"
    assert json.loads((export / "tfpg_metadata.json").read_text())["env_kwargs"] == {"length": 1}

    forget_custom_envs(monkeypatch)
    np.testing.assert_array_equal(evaluate(str(export), episodes=3), [1.0, 1.0, 1.0])
    assert "custom_envs" in sys.modules and "tfpg_tests/FailingCorridor-v0" in gym.registry


def test_a_non_finite_observation_stops_the_run_named_as_such(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(custom_envs._steps, "n", 0)
    monkeypatch.setenv(custom_envs.FAIL_AT, "40")
    assert run(tmp_path, "--env", f"{PREFIX}NaNCorridor-v0", "--total-steps", "400", *TINY) == 1
    line = error_line(capsys)
    assert line.startswith(f"train.py: error: {PREFIX}NaNCorridor-v0: step() returned a non-finite observation at "
                           "env step ")
    assert line.endswith("the run has no checkpoint to resume from (train with --checkpoint-every N)")
