import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(args, cwd, module=None, timeout=600):
    """Run train.py (or `python -m module`) in a subprocess; returns CompletedProcess."""
    cmd = [sys.executable, "-m", module] if module else [sys.executable, os.path.join(ROOT, "train.py")]
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_tensorflow_only(code: str, *args, cwd) -> dict:
    """Run `python -c code args` where tfpg is not importable (no PYTHONPATH, cwd elsewhere), as a
    user who only has TensorFlow would load an export; returns the JSON its last stdout line holds."""
    import json

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def workdir(tmp_path):
    return tmp_path
