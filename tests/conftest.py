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


def checkpoint_tensors(prefix) -> dict:
    """Every variable a checkpoint holds but the training clock (which no two runs share); the object graph
    is left out too, as it names Keras objects by their order of creation in the process."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.endswith("VARIABLE_VALUE") and "seconds" not in name}


def assert_same_checkpoint(a, b) -> None:
    import numpy as np

    first, second = checkpoint_tensors(a), checkpoint_tensors(b)
    assert sorted(first) == sorted(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
