"""The scripts in examples/ run as the docs show them (in this process, with short budgets)."""
import os
import runpy
import sys

import pytest

from tfpg.cli.train import main as cli_main

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.fixture
def in_examples(tmp_path, monkeypatch):
    """As `python examples/<script>.py` runs: examples/ first on sys.path, a scratch working folder, short budgets."""
    monkeypatch.syspath_prepend(EXAMPLES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TFPG_EXAMPLE_STEPS", "1024")
    return tmp_path


@pytest.mark.parametrize("script, says", [
    ("custom_env.py", "heater at 12, 20 and 28 degrees"),
    ("callbacks.py", "env steps; exported to"),
    ("save_load_predict.py", "SavedModel at"),
])
def test_an_example_runs(in_examples, capsys, script, says):
    runpy.run_path(os.path.join(EXAMPLES, script), run_name="__main__")
    assert says in capsys.readouterr().out


def test_the_example_package_registers_its_env_for_the_command_line(in_examples, capsys):
    """--env-module imports a package that registers its envs (as minigrid does); config.json records PKG:ID."""
    sys.modules.pop("corridor_envs", None)
    assert cli_main(["--algo", "ppo", "--env-module", "corridor_envs", "--env", "Corridor-v0", "--total-steps", "256",
                     "--num-envs", "4", "--horizon", "32", "--epochs", "1", "--no-progress", "--no-export",
                     "--run-name", "pkg"]) == 0
    assert '"env_id": "corridor_envs:Corridor-v0"' in (in_examples / "runs" / "pkg" / "config.json").read_text()
