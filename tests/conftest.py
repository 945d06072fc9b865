import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")

# Every test file's tier, in this one place (setup.cfg registers the markers; `python -m pytest` runs all three):
#   unit         fast, no training loop: maths, configs, parsing, single updates (python -m pytest -m unit)
#   integration  trains, or runs the CLI, exports or Ray for a few steps; subprocesses
#   learning     an algorithm reaches a score with a fixed seed and step budget
# A test may take another tier with its own marker (@pytest.mark.learning); a file missing here fails collection.
TIERS = {
    "test_actor_critic.py": "integration",
    "test_api.py": "integration",
    "test_atari.py": "integration",
    "test_cli.py": "integration",
    "test_code_shape.py": "unit",
    "test_contract.py": "integration",
    "test_custom_envs.py": "integration",
    "test_damaged_files.py": "unit",
    "test_damaged_runs.py": "integration",
    "test_defects.py": "integration",
    "test_docs.py": "unit",
    "test_dqn.py": "unit",
    "test_evaluation.py": "unit",
    "test_examples.py": "integration",
    "test_export.py": "integration",
    "test_export_formats.py": "integration",
    "test_fixed_horizon.py": "unit",
    "test_gae.py": "unit",
    "test_gaussian.py": "integration",
    "test_graph_backend.py": "integration",
    "test_graph_envs.py": "unit",
    "test_graph_ppo.py": "integration",
    "test_layers.py": "unit",
    "test_learning.py": "learning",
    "test_learning_actor_critic.py": "learning",
    "test_losses.py": "unit",
    "test_natural_gradient.py": "unit",
    "test_normalization.py": "unit",
    "test_pg_family.py": "unit",
    "test_pixel_envs.py": "integration",
    "test_policy_loss.py": "unit",
    "test_preset_record.py": "unit",
    "test_presets.py": "integration",
    "test_reliability.py": "integration",
    "test_replay.py": "unit",
    "test_returns.py": "unit",
    "test_rollout.py": "unit",
    "test_runs_from_before_the_move.py": "integration",
    "test_schedules.py": "unit",
    "test_serving.py": "integration",
    "test_validation_property.py": "unit",
    "test_workers.py": "integration",
    "test_workers_config.py": "unit",
}
TIER_NAMES = ("unit", "integration", "learning")
TIER_CONFLICT = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)   # before xdist's controller skips collection
def pytest_collection(session):
    """Refuse to collect while a test file of tests/ has no tier, or TIERS names a file that is gone. Checked once,
    in the process that reports (xdist's controller, or the only one): a worker's error would be an INTERNALERROR."""
    if hasattr(session.config, "workerinput"):
        return
    files = {name for name in os.listdir(TESTS) if name.startswith("test_") and name.endswith(".py")}
    unplaced, gone = sorted(files - set(TIERS)), sorted(set(TIERS) - files)
    if unplaced or gone:
        raise pytest.UsageError("\n".join(
            ["the test tiers (TIERS in tests/conftest.py) need updating:"]
            + [f"  tests/{name} is in no tier: add it to TIERS as one of {', '.join(TIER_NAMES)}" for name in unplaced]
            + [f"  tests/{name} is in TIERS but is no file: rename or remove its entry" for name in gone]))


# The files handed to the two xdist workers first, longest first (--dist loadfile gives out files in collection
# order; longest first keeps one worker from running a long file alone at the end: in alphabetical order
# test_workers.py came last and ran alone for its ~5 minutes). Measured on this 2-core machine, 2026-12-08; the
# files under ~15 s follow in alphabetical order.
SLOWEST_FIRST = ("test_workers.py", "test_reliability.py", "test_presets.py", "test_contract.py",
                 "test_graph_envs.py", "test_serving.py", "test_atari.py", "test_learning_actor_critic.py",
                 "test_actor_critic.py", "test_cli.py", "test_gaussian.py", "test_api.py", "test_graph_backend.py",
                 "test_learning.py", "test_graph_ppo.py", "test_damaged_runs.py", "test_defects.py",
                 "test_export_formats.py", "test_examples.py", "test_export.py", "test_custom_envs.py",
                 "test_pg_family.py", "test_natural_gradient.py", "test_runs_from_before_the_move.py")


@pytest.hookimpl(tryfirst=True)   # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    """Mark each test with its file's tier from TIERS, unless the test carries a tier marker of its own; put the
    slowest files first."""
    items.sort(key=lambda item: SLOWEST_FIRST.index(item.path.name) if item.path.name in SLOWEST_FIRST
               else len(SLOWEST_FIRST))
    for item in items:
        own = {m.name for m in item.iter_markers() if m.name in TIER_NAMES}
        if not own and item.path.name in TIERS:
            item.add_marker(TIERS[item.path.name])
        elif len(own) > 1:     # e.g. a module's pytestmark and the test's own: it would run in both tiers
            item.stash[TIER_CONFLICT] = f"marked {' and '.join(sorted(own))}: a test has one tier"


def pytest_runtest_setup(item):
    if TIER_CONFLICT in item.stash:
        pytest.fail(item.stash[TIER_CONFLICT], pytrace=False)


def run_cli(args, cwd, module=None, timeout=600):
    """Run train.py (or `python -m module`) in a subprocess; returns CompletedProcess."""
    cmd = [sys.executable, "-m", module] if module else [sys.executable, os.path.join(ROOT, "train.py")]
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(cmd + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def cli_here(args, cwd, module: str = "train"):
    """What `run_cli` returns, from tfpg's command line run in this process (with `cwd` as the working folder):
    no TensorFlow start-up of its own, for the tests of what the command line says rather than of the process."""
    import contextlib
    import io
    import types

    from tfpg.cli import evaluate, train
    from tfpg.export import formats

    main = {"train": train.main, "tfpg.evaluate": evaluate.main, "tfpg.export.formats": formats.main}[module]
    out, err, before = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:   # argparse's usage errors, --help
                code = e.code
    finally:
        os.chdir(before)
    return types.SimpleNamespace(returncode=code or 0, stdout=out.getvalue(), stderr=err.getvalue())


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
