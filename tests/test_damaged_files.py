"""Damaged files (flipped bytes, truncated or missing files, garbage) give one clear line, a resume falls back to
the newest intact checkpoint, and a write that fails part-way leaves the previous checkpoint/export intact."""
import errno
import json
import os
import pathlib
import re
import shutil

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpg.core.checkpoint import (
    CHECKPOINT_DIR,
    STATE_FILE,
    TrainingCheckpoint,
    find_intact_checkpoint,
    restore_intact_checkpoint,
)
from tfpg.core.errors import ConfigError, SaveError
from tfpg.export.saved_model import export_policy, load_saved_model, read_metadata
from tfpg.core.files import read_run_config

STEPS = (5000, 10000, 15000)


class Run:
    """A tiny run: a Keras model, its Adam optimizer, a TF RNG and two arrays, checkpointed together."""

    def __init__(self, run_dir, fill=0.0):
        self.model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
        self.optimizer = keras.optimizers.Adam(0.01)
        self.optimizer.build(self.model.trainable_variables)
        self.rng = tf.random.Generator.from_seed(7)
        for v in self.model.weights:
            v.assign(np.full(v.shape, fill, np.float32))
        self.checkpoint = TrainingCheckpoint(str(run_dir), {"model": self.model, "optimizer": self.optimizer,
                                                           "rng": self.rng},
                                             {"run/env_steps": np.int64(0), "run/recent": np.zeros(3)})

    def weights(self):
        return [v.numpy().copy() for v in self.model.weights]

    def save(self, step):
        """Give every weight a value that depends on `step`, take one optimizer step, save."""
        for i, v in enumerate(self.model.weights):
            v.assign(np.full(v.shape, step / 1000 + i, np.float32))
        self.optimizer.apply([tf.ones_like(v) for v in self.model.trainable_variables], self.model.trainable_variables)
        self.rng.normal([2])
        return self.checkpoint.save(step, {"run/env_steps": np.int64(step), "run/recent": np.full(step % 7, 1.0)})


@pytest.fixture
def saved_run(tmp_path):
    """A run folder with checkpoints at 5k, 10k, 15k; returns (run_dir, {step: model weights})."""
    run = Run(tmp_path / "run")
    weights = {}
    for step in STEPS:
        run.save(step)
        weights[step] = run.weights()
    return tmp_path / "run", weights


def _ckpt_dir(run_dir):
    return run_dir / CHECKPOINT_DIR


def _data_file(run_dir, step):
    return _ckpt_dir(run_dir) / f"ckpt-{step}.data-00000-of-00001"


def _flip_bytes(path, start=0, count=100):
    data = bytearray(path.read_bytes())
    for i in range(start, min(start + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _snapshot(folder):
    """Every file under `folder` with its size, mtime and content hash: a change to any of them shows."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            p = os.path.join(root, name)
            st = os.stat(p)
            out[os.path.relpath(p, folder)] = (st.st_size, st.st_mtime_ns, hash(pathlib.Path(p).read_bytes()))
    return out


def _restore_fresh(run_dir):
    """Restore into a new run whose weights are all 123 (so a restore that does not happen shows)."""
    run = Run(run_dir, fill=123.0)
    arrays = run.checkpoint.restore()
    return run, arrays


def _assert_one_line(error):
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text, text


# --- checkpoints: damage and fallback ------------------------------------------------------------------------------

def test_intact_checkpoints_restore_the_newest_without_a_message(saved_run):
    run_dir, weights = saved_run
    run, arrays = _restore_fresh(run_dir)
    assert int(arrays["run/env_steps"]) == 15000
    for a, b in zip(run.weights(), weights[15000]):
        np.testing.assert_array_equal(a, b)
    assert run.checkpoint.last_restore.name == "ckpt-15000"
    assert run.checkpoint.last_restore.message() is None


@pytest.mark.parametrize("damage, reason", [
    (lambda d: _flip_bytes(_data_file(d, 15000), start=16), "data file checksum mismatch"),
    (lambda d: _truncate(_ckpt_dir(d) / "ckpt-15000.index"), "index file damaged"),
    (lambda d: _flip_bytes(_ckpt_dir(d) / "ckpt-15000.index", start=8, count=20), "index file damaged"),
    (lambda d: os.remove(_data_file(d, 15000)), "data file missing"),
    (lambda d: _truncate(_data_file(d, 15000)), "data file truncated"),
    (lambda d: os.remove(_ckpt_dir(d) / "ckpt-15000.index"), "index file missing"),
], ids=["flipped-data", "truncated-index", "flipped-index", "missing-data", "truncated-data", "missing-index"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_older_one(saved_run, damage, reason):
    run_dir, weights = saved_run
    damage(run_dir)
    run, arrays = _restore_fresh(run_dir)
    assert run.checkpoint.last_restore.message() == (
        f"resume: skipped checkpoint ckpt-15000 ({reason}); using ckpt-10000")
    assert int(arrays["run/env_steps"]) == 10000
    assert arrays["run/recent"].shape == (10000 % 7,)
    for a, b in zip(run.weights(), weights[10000]):   # exactly the older checkpoint's values
        np.testing.assert_array_equal(a, b)
    # ... and the same as restoring a folder that only ever had the older checkpoint
    direct = Run(run_dir.parent / "direct")
    for step in STEPS[:2]:
        direct.save(step)
    direct_run, _ = _restore_fresh(run_dir.parent / "direct")
    assert int(direct_run.optimizer.iterations.numpy()) == int(run.optimizer.iterations.numpy()) == 2
    np.testing.assert_array_equal(direct_run.rng.state.numpy(), run.rng.state.numpy())


def test_two_damaged_checkpoints_are_both_named(saved_run):
    run_dir, _ = saved_run
    _flip_bytes(_data_file(run_dir, 15000), start=16)
    os.remove(_data_file(run_dir, 10000))
    run, arrays = _restore_fresh(run_dir)
    assert run.checkpoint.last_restore.message() == ("resume: skipped checkpoints ckpt-15000 (data file checksum "
                                                     "mismatch), ckpt-10000 (data file missing); using ckpt-5000")
    assert int(arrays["run/env_steps"]) == 5000


def test_a_pointer_to_a_missing_checkpoint_falls_back_to_the_files_present(saved_run):
    run_dir, _ = saved_run
    (_ckpt_dir(run_dir) / STATE_FILE).write_text('model_checkpoint_path: "ckpt-20000"\n'
                                                 'all_model_checkpoint_paths: "ckpt-20000"\n')
    run, arrays = _restore_fresh(run_dir)
    assert run.checkpoint.last_restore.message() == (
        "resume: skipped checkpoint ckpt-20000 (its files are missing); using ckpt-15000")
    assert int(arrays["run/env_steps"]) == 15000


def test_saving_after_a_pointer_to_a_missing_checkpoint_keeps_the_real_ones(saved_run):
    run_dir, _ = saved_run
    (_ckpt_dir(run_dir) / STATE_FILE).write_text('model_checkpoint_path: "ckpt-20000"\n'
                                                 'all_model_checkpoint_paths: "ckpt-20000"\n')
    Run(run_dir).save(25000)
    state = tf.train.get_checkpoint_state(str(_ckpt_dir(run_dir)))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-10000", "ckpt-15000", "ckpt-25000"]
    assert sorted(p.name for p in _ckpt_dir(run_dir).glob("*.index")) == [
        "ckpt-10000.index", "ckpt-15000.index", "ckpt-25000.index"]


@pytest.mark.parametrize("content", [b"\x00\xff garbage {{{", b'model_checkpoint_path: "ckpt-15', b""],
                         ids=["garbage", "cut-short", "empty"])
def test_a_damaged_state_file_falls_back_to_the_newest_files(saved_run, content):
    run_dir, _ = saved_run
    (_ckpt_dir(run_dir) / STATE_FILE).write_bytes(content)
    run, arrays = _restore_fresh(run_dir)
    message = run.checkpoint.last_restore.message()
    assert message.startswith("resume: the checkpoint state file is ") and message.endswith("; using ckpt-15000")
    assert int(arrays["run/env_steps"]) == 15000


def test_no_intact_checkpoint_is_one_line_and_loads_nothing(saved_run):
    run_dir, _ = saved_run
    for step in STEPS:
        _flip_bytes(_data_file(run_dir, step), start=16)
    run = Run(run_dir, fill=123.0)
    before = run.weights()
    with pytest.raises(ConfigError) as e:
        run.checkpoint.restore()
    _assert_one_line(e.value)
    assert str(e.value) == (
        f"no intact checkpoint in {_ckpt_dir(run_dir)} (ckpt-15000: data file checksum mismatch, ckpt-10000: data "
        "file checksum mismatch, ckpt-5000: data file checksum mismatch); restore the folder from a backup, or start "
        "a new run without --resume")
    for a, b in zip(run.weights(), before):
        np.testing.assert_array_equal(a, b)


def test_an_empty_checkpoint_folder_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint in .*; it was never written") as e:
        find_intact_checkpoint(str(tmp_path))
    _assert_one_line(e.value)


def test_validating_a_damaged_checkpoint_writes_nothing(saved_run):
    run_dir, _ = saved_run
    _flip_bytes(_data_file(run_dir, 15000), start=16)
    before = _snapshot(run_dir)
    validated = find_intact_checkpoint(str(_ckpt_dir(run_dir)))
    assert validated.name == "ckpt-10000" and validated.skipped == [("ckpt-15000", "data file checksum mismatch")]
    run = Run(run_dir, fill=123.0)
    assert int(run.checkpoint.restore(validated=validated)["run/env_steps"]) == 10000
    assert run.checkpoint.last_restore.message() == (
        "resume: skipped checkpoint ckpt-15000 (data file checksum mismatch); using ckpt-10000")
    _restore_fresh(run_dir)
    assert _snapshot(run_dir) == before


def test_a_checkpoint_that_does_not_fit_is_loaded_all_or_nothing(tmp_path):
    """The checkpoint holds the model plus an object this run lacks: TF's read loads the model, then
    assert_consumed fails; the restore puts the model's values back and raises one line."""
    def objects(fill, **extra):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
        for v in model.weights:
            v.assign(np.full(v.shape, fill, np.float32))
        return model, tf.train.Checkpoint(model=model, **extra)

    folder = tmp_path / "ckpts"
    _, saved = objects(1.0, extra=tf.Variable(np.zeros(2, np.float32)))
    prefix = saved.write(str(folder / "ckpt-100"))
    tf.compat.v1.train.update_checkpoint_state(str(folder), "ckpt-100")
    # Without the guard, a failing read leaves the model loaded (the check below is not vacuous).
    model, target = objects(5.0)
    with pytest.raises(AssertionError):
        target.read(prefix).assert_consumed()
    assert all((v.numpy() == 1.0).all() for v in model.weights)
    model, target = objects(5.0)
    with pytest.raises(ConfigError, match="^checkpoint .*ckpt-100 does not fit this run") as e:
        restore_intact_checkpoint(str(folder), target)
    _assert_one_line(e.value)
    assert all((v.numpy() == 5.0).all() for v in model.weights)


# --- checkpoints: a write that fails part-way --------------------------------------------------------------------

def _failing_write(monkeypatch, error):
    """tf.train.Checkpoint.write writes, then the 'disk fills up': the data file is cut short and `error` raised."""
    real_write = tf.train.Checkpoint.write

    def write(self, file_prefix, options=None):
        prefix = real_write(self, file_prefix, options=options)
        _truncate(pathlib.Path(prefix + ".data-00000-of-00001"))
        raise error

    monkeypatch.setattr(tf.train.Checkpoint, "write", write)


@pytest.mark.parametrize("step", [20000, 15000], ids=["new-step", "same-step-as-latest"])
def test_a_checkpoint_write_that_fails_leaves_the_previous_ones_intact(saved_run, monkeypatch, step):
    run_dir, weights = saved_run
    run = Run(run_dir)
    state_before = (_ckpt_dir(run_dir) / STATE_FILE).read_bytes()
    files_before = sorted(os.listdir(_ckpt_dir(run_dir)))
    _failing_write(monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.raises(SaveError) as e:
        run.save(step)
    _assert_one_line(e.value)
    assert str(e.value) == (
        f"checkpoint ckpt-{step} could not be written to {_ckpt_dir(run_dir)} (No space left on device); the last good "
        f"checkpoint is ckpt-15000; fix the cause, then continue with: python train.py --resume {run_dir}")
    monkeypatch.undo()
    assert sorted(os.listdir(_ckpt_dir(run_dir))) == files_before   # no partial files left behind
    assert (_ckpt_dir(run_dir) / STATE_FILE).read_bytes() == state_before
    restored, arrays = _restore_fresh(run_dir)
    assert restored.checkpoint.last_restore.message() is None and int(arrays["run/env_steps"]) == 15000
    for a, b in zip(restored.weights(), weights[15000]):
        np.testing.assert_array_equal(a, b)


def test_a_failing_state_file_update_leaves_the_previous_state(saved_run, monkeypatch):
    run_dir, _ = saved_run
    run = Run(run_dir)
    state_before = (_ckpt_dir(run_dir) / STATE_FILE).read_bytes()
    files_before = sorted(os.listdir(_ckpt_dir(run_dir)))

    def update(*args, **kwargs):
        raise tf.errors.PermissionDeniedError(None, None, "checkpoint.tmp; Read-only file system")

    monkeypatch.setattr(tf.compat.v1.train, "update_checkpoint_state", update)
    with pytest.raises(SaveError, match=r"checkpoint ckpt-20000 could not be written .* \(checkpoint.tmp; Read-only "
                                        r"file system\); the last good checkpoint is ckpt-15000") as e:
        run.save(20000)
    _assert_one_line(e.value)
    assert sorted(os.listdir(_ckpt_dir(run_dir))) == files_before
    assert (_ckpt_dir(run_dir) / STATE_FILE).read_bytes() == state_before


def test_the_first_checkpoint_failing_says_there_is_none(tmp_path, monkeypatch):
    run = Run(tmp_path / "run")
    _failing_write(monkeypatch, OSError(errno.EROFS, os.strerror(errno.EROFS)))
    with pytest.raises(SaveError, match=r"\(Read-only file system\); no earlier checkpoint of this run exists$"):
        run.save(5000)


def test_saving_keeps_the_newest_three_and_removes_staging_files(saved_run):
    run_dir, _ = saved_run
    run = Run(run_dir)
    (_ckpt_dir(run_dir) / "ckpt-17000.partial.index").write_bytes(b"left by a killed write")
    run.save(20000)
    names = sorted(os.listdir(_ckpt_dir(run_dir)))
    assert names == sorted([STATE_FILE] + [f"ckpt-{s}.{ext}" for s in (10000, 15000, 20000)
                                           for ext in ("index", "data-00000-of-00001")])
    state = tf.train.get_checkpoint_state(str(_ckpt_dir(run_dir)))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-10000", "ckpt-15000", "ckpt-20000"]
    assert str(run_dir) not in (_ckpt_dir(run_dir) / STATE_FILE).read_text()   # relative names: the folder can move


# --- config.json -------------------------------------------------------------------------------------------------

FIELDS = {"reinforce": {"algo", "env_id", "lr", "hidden"}, "dqn": {"algo", "env_id", "lr", "buffer_size"}}
GOOD_CONFIG = {"algo": "reinforce", "env_id": "CartPole-v1", "lr": 0.01, "hidden": [32]}


@pytest.mark.parametrize("content, expect", [
    (json.dumps(GOOD_CONFIG, indent=2)[:30], r"is damaged \(not valid JSON: .*\); restore it from a backup"),
    (b"\xff\xfe\x00garbage", r"is damaged \(not valid JSON: .*\); restore it from a backup"),
    ("", r"is damaged \(not valid JSON: .*\)"),
    ("[1, 2]", r"is damaged \(it holds a JSON array, not an object\)"),
    ('{"env_id": "CartPole-v1"}', r"is damaged \(\"algo\" is None, this tfpg has dqn, reinforce\)"),
    ('{"algo": "ppo"}', r"is damaged \(\"algo\" is 'ppo', this tfpg has dqn, reinforce\)"),
    (json.dumps({**GOOD_CONFIG, "buffer_size": 5, "zzz": 1}),
     r"has fields that --algo reinforce does not know \(buffer_size, zzz\); .* start a new run without --resume"),
], ids=["cut-short", "binary", "empty", "array", "no-algo", "unknown-algo", "unknown-fields"])
def test_a_damaged_config_json_is_one_line_naming_the_file(tmp_path, content, expect):
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError, match="^" + re.escape(str(path)) + " " + expect) as e:
        read_run_config(str(tmp_path), FIELDS)
    _assert_one_line(e.value)


def test_a_good_or_missing_config_json(tmp_path):
    with pytest.raises(ConfigError, match="config.json does not exist; pass a run folder written by train.py"):
        read_run_config(str(tmp_path), FIELDS)
    (tmp_path / "config.json").write_text(json.dumps(GOOD_CONFIG))
    assert read_run_config(str(tmp_path), FIELDS) == GOOD_CONFIG


# --- exports ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tfpg.models.policies import CategoricalPolicy

    folder = tmp_path_factory.mktemp("export")
    policy = CategoricalPolicy(gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2),
                               hidden=(8,), seed=0)
    path = export_policy(policy, {"env_id": "CartPole-v1", "generation": 1}, str(folder / "model"))
    return policy, path


@pytest.fixture
def export_copy(exported, tmp_path):
    _, path = exported
    return shutil.copytree(path, tmp_path / "model")


def test_an_intact_export_loads(export_copy):
    loaded = load_saved_model(str(export_copy))
    assert loaded.signatures["serving_default"](observations=tf.zeros((1, 4)))["action"].shape == (1,)


@pytest.mark.parametrize("content", [os.urandom(300), b"", b"saved_model.pb\n"], ids=["random", "empty", "text"])
def test_a_garbage_saved_model_pb_is_one_line_naming_it(export_copy, content):
    (export_copy / "saved_model.pb").write_bytes(content)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(export_copy))}/saved_model.pb is damaged or not loadable by this "
                                          r"TensorFlow \(.*\); re-export the model") as e:
        load_saved_model(str(export_copy))
    _assert_one_line(e.value)


@pytest.mark.parametrize("damage, reason", [
    (lambda v: _flip_bytes(v / "variables.data-00000-of-00001", start=16), "data file checksum mismatch"),
    (lambda v: _truncate(v / "variables.index"), "index file damaged"),
    (lambda v: os.remove(v / "variables.data-00000-of-00001"), "data file missing"),
], ids=["flipped-data", "truncated-index", "missing-data"])
def test_damaged_export_variables_are_one_line_naming_them(export_copy, damage, reason):
    damage(export_copy / "variables")
    with pytest.raises(ConfigError) as e:
        load_saved_model(str(export_copy))
    assert str(e.value) == (f"{export_copy}/variables is damaged ({reason}); re-export the model (or restore the "
                            "folder from a backup)")


@pytest.mark.parametrize("content, why", [
    ('{"format_version": 1, "env_', r"not valid JSON: .*"),
    ("\x00\x01", r"not valid JSON: .*"),
    ("[]", r"it holds a JSON array, not an object"),
    ('{"format_version": 1}', r"it names no env_id"),
], ids=["cut-short", "binary", "array", "no-env-id"])
def test_damaged_metadata_json_is_one_line_naming_it(export_copy, content, why):
    meta = export_copy / "tfpg_metadata.json"
    meta.write_text(content)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(meta))} is damaged \\({why}\\); re-export the model") as e:
        read_metadata(str(export_copy))
    _assert_one_line(e.value)


def _fail_saved_model_save(monkeypatch):
    """tf.saved_model.save writes part of the export, then the disk is full."""
    def save(obj, export_dir, signatures=None, options=None):
        os.makedirs(os.path.join(export_dir, "variables"), exist_ok=True)
        with open(os.path.join(export_dir, "saved_model.pb"), "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tf.saved_model, "save", save)


def test_an_export_that_fails_part_way_leaves_the_previous_export(exported, export_copy, monkeypatch):
    policy, _ = exported
    before = _snapshot(export_copy)
    _fail_saved_model_save(monkeypatch)
    with pytest.raises(SaveError) as e:
        export_policy(policy, {"env_id": "CartPole-v1", "generation": 2}, str(export_copy), overwrite=True)
    assert str(e.value) == (f"the export to {export_copy} failed (No space left on device); the previous export there "
                            "is unchanged")
    monkeypatch.undo()
    assert _snapshot(export_copy) == before
    assert sorted(os.listdir(export_copy.parent)) == ["model"]   # no temporary folders left
    assert read_metadata(str(export_copy))["generation"] == 1
    load_saved_model(str(export_copy))


def test_a_failing_final_rename_puts_the_previous_export_back(exported, export_copy, monkeypatch):
    policy, _ = exported
    real_rename = os.rename

    def rename(src, dst):
        if os.path.basename(src).startswith(".model.tmp-"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(SaveError, match=r"\(Read-only file system\); the previous export there is unchanged"):
        export_policy(policy, {"env_id": "CartPole-v1", "generation": 2}, str(export_copy), overwrite=True)
    monkeypatch.undo()
    assert sorted(os.listdir(export_copy.parent)) == ["model"]
    assert read_metadata(str(export_copy))["generation"] == 1


def test_a_first_export_failing_says_nothing_was_written(exported, tmp_path, monkeypatch):
    policy, _ = exported
    _fail_saved_model_save(monkeypatch)
    with pytest.raises(SaveError, match=r"\(No space left on device\); no export was written there$"):
        export_policy(policy, {"env_id": "CartPole-v1"}, str(tmp_path / "new"))
    assert os.listdir(tmp_path) == []


def test_a_missing_variables_folder_is_one_line(export_copy):
    shutil.rmtree(export_copy / "variables")
    with pytest.raises(ConfigError) as e:
        load_saved_model(str(export_copy))
    assert str(e.value) == f"{export_copy}/variables is missing; re-export the model (or restore the folder from a backup)"
