"""Run folders and exports written by tfpg 0.2.0 before its modules moved into sub-packages still work.

`tests/fixtures/before_move/` was written by the flat-layout code (commit f75aa43,
`python train.py ... --checkpoint-every N`): a PPO, a DQN (replay in the checkpoint) and a REINFORCE run
and their exports. Each run is resumed through the CLI to a larger budget and must continue exactly as
it did under the old code (the numbers below were read from that code's resumed runs), and each export
evaluates as it did then.
"""
import json
import shutil

import pytest
from conftest import ROOT, cli_here

from tfpg.cli.evaluate import evaluate

FIXTURE = f"{ROOT}/tests/fixtures/before_move"

# run -> (--total-steps of the resume, what the old code's resumed summary.json said, greedy returns of the
# resumed export, greedy returns of the export as written before the move; 5 episodes from the eval seeds)
CASES = {
    "ppo": (4096, dict(env_steps=4184, episodes=169, reward_100=21.74, updates=17),
            [31.0, 27.0, 25.0, 30.0, 30.0], [15.0, 13.0, 13.0, 14.0, 15.0]),
    "dqn": (4500, dict(env_steps=4500, episodes=164, reward_100=29.04, updates=14, eval_reward=140.5),
            [162.0, 143.0, 152.0, 128.0, 137.0], [132.0, 124.0, 117.0, 145.0, 120.0]),
    "reinforce": (3000, dict(env_steps=3305, episodes=69, reward_100=36.43478260869565, updates=17),
                  [84.0, 113.0, 90.0, 95.0, 84.0], [88.0, 119.0, 79.0, 100.0, 86.0]),
}


def _returns(cwd, export) -> list:
    """Greedy returns of 5 episodes from the evaluation seeds, as `python -m tfpg.evaluate` computes them."""
    return evaluate(str(cwd / export), episodes=5).tolist()


@pytest.mark.parametrize("run", sorted(CASES))
def test_an_old_run_resumes_exactly_and_its_exports_evaluate(tmp_path, run):
    total, expected, resumed_returns, old_returns = CASES[run]
    shutil.copytree(f"{FIXTURE}/run_folders/{run}", tmp_path / "runs" / run)
    shutil.copytree(f"{FIXTURE}/exports/{run}", tmp_path / "saved_models" / run)
    assert _returns(tmp_path, "saved_models/" + run) == old_returns
    proc = cli_here(["--resume", f"runs/{run}", "--total-steps", str(total), "--no-progress"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "runs" / run / "summary.json").read_text())
    assert {k: summary[k] for k in expected} == expected
    assert _returns(tmp_path, "saved_models/" + run) == resumed_returns
