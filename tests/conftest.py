import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_cli(args, cwd, module=None, timeout=600):
    """Run train.py (or `python -m module`) in a subprocess; returns CompletedProcess."""
    cmd = [sys.executable, "-m", module] if module else [sys.executable, os.path.join(ROOT, "train.py")]
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def workdir(tmp_path):
    return tmp_path
