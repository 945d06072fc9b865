"""The issue's damaged-file cases through the command lines (train.py --resume, python -m tfpg.evaluate,
tfpg-export): exit status, the one line on stderr, no traceback, and what is left on disk.

One tiny CartPole run with three checkpoints is trained per module; each test damages its own copy.
"""
import errno
import hashlib
import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, run_cli

from tfpg.cli import evaluate
from tfpg.cli import train as cli
from tfpg.export import formats as export_formats

NAME = "r"
FLAGS = ["--num-envs", "4", "--hidden", "16", "--episodes-per-update", "4", "--lr", "0.01", "--seed", "5",
         "--checkpoint-every", "1000", "--total-steps", "3000", "--no-progress", "--run-name", NAME]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder holding runs/r (checkpoints at >= 1000, 2000, 3000 env steps) and its export saved_models/r."""
    folder = tmp_path_factory.mktemp("trained")
    here = os.getcwd()
    os.chdir(folder)
    try:
        assert cli.main(FLAGS) == 0
    finally:
        os.chdir(here)
    return folder


@pytest.fixture
def run(trained, tmp_path, monkeypatch):
    """A copy of the trained folder as the working directory; returns the absolute runs/r."""
    for sub in ("runs", "saved_models"):
        shutil.copytree(trained / sub, tmp_path / sub)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "runs" / NAME


def _checkpoints(run_dir):
    """The run's checkpoint names, oldest first, and their env steps."""
    state = tf.train.get_checkpoint_state(str(run_dir / "checkpoints"))
    names = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
    return names, [int(n.split("-")[1]) for n in names]


def _data_file(run_dir, name):
    return run_dir / "checkpoints" / f"{name}.data-00000-of-00001"


def _flip_bytes(path, start=16, count=100):
    data = bytearray(path.read_bytes())
    for i in range(start, min(start + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _digest(folder):
    """{relative path: sha256 of the content} for every file under `folder`."""
    return {os.path.relpath(os.path.join(root, f), folder): hashlib.sha256(open(os.path.join(root, f), "rb").read())
            .hexdigest() for root, _, files in os.walk(folder) for f in files}


def _error_line(capsys, prefix):
    """The one line on stderr (after TensorFlow's own notices, if any); no traceback anywhere."""
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    lines = [line for line in err.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, err
    return lines[0]


def _resume(*extra):
    return cli.main(["--resume", f"runs/{NAME}", "--no-progress", *extra])


# --- fallback to the newest intact checkpoint ----------------------------------------------------------------------

def _truncate_index(run_dir, name):
    index = run_dir / "checkpoints" / f"{name}.index"
    index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])


def _point_to_a_missing_checkpoint(run_dir, names):
    tf.compat.v1.train.update_checkpoint_state(str(run_dir / "checkpoints"), "ckpt-99999",
                                               all_model_checkpoint_paths=names + ["ckpt-99999"])


@pytest.mark.parametrize("damage, skipped, reason", [
    (lambda d, names: _flip_bytes(_data_file(d, names[-1])), "newest", "data file checksum mismatch"),
    (lambda d, names: _truncate_index(d, names[-1]), "newest", "index file damaged"),
    (lambda d, names: os.remove(_data_file(d, names[-1])), "newest", "data file missing"),
    (_point_to_a_missing_checkpoint, "ckpt-99999", "its files are missing"),
], ids=["flipped-data", "truncated-index", "missing-data", "pointer-to-missing"])
def test_a_damaged_newest_checkpoint_is_skipped_with_one_line(run, capsys, damage, skipped, reason):
    names, steps = _checkpoints(run)
    damage(run, names)
    # The newest intact one is used: the second newest, or with the pointer to ckpt-99999 the newest files present.
    skipped, used = (names[-1], -2) if skipped == "newest" else (skipped, -1)
    assert _resume("--total-steps", str(steps[used])) == 0   # the budget is reached at the checkpoint: no training
    assert _error_line(capsys, "resume:") == f"resume: skipped checkpoint {skipped} ({reason}); using {names[used]}"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] == steps[used]   # the run went on from the checkpoint it named


def test_the_fallback_run_ends_with_the_weights_of_a_resume_from_the_older_checkpoint(run, tmp_path, capsys):
    names, steps = _checkpoints(run)
    direct = tmp_path / "direct"   # the same run as it was right after its second checkpoint
    for sub in ("runs", "saved_models"):
        shutil.copytree(tmp_path / sub, direct / sub)
    checkpoints = direct / "runs" / NAME / "checkpoints"
    for path in checkpoints.glob(f"{names[-1]}.*"):
        path.unlink()
    tf.compat.v1.train.update_checkpoint_state(str(checkpoints), names[-2], all_model_checkpoint_paths=names[:-1])

    budget = str(steps[-1] + 1000)
    _flip_bytes(_data_file(run, names[-1]))
    assert _resume("--total-steps", budget) == 0
    assert _error_line(capsys, "resume:") == (f"resume: skipped checkpoint {names[-1]} (data file checksum mismatch); "
                                              f"using {names[-2]}")
    os.chdir(direct)
    assert _resume("--total-steps", budget) == 0
    assert "resume:" not in capsys.readouterr().err

    # The whole state at the last checkpoint both wrote after the skipped one, and the exported final weights.
    final = [_checkpoints(folder)[0][-1] for folder in (run, direct / "runs" / NAME)]
    assert final[0] == final[1] and int(final[0].split("-")[1]) > steps[-1]
    _assert_same_tensors(*(folder / "runs" / NAME / "checkpoints" / final[0] for folder in (tmp_path, direct)),
                         compared=lambda key: "seconds" not in key and key != "_CHECKPOINTABLE_OBJECT_GRAPH")
    _assert_same_tensors(*(folder / "saved_models" / NAME / "variables" / "variables" for folder in (tmp_path, direct)),
                         compared=lambda key: key.startswith("model/"))   # the final policy network


def _assert_same_tensors(prefix, other, compared):
    """The tensors of two checkpoints whose keys pass `compared` are equal; the network's weights are among them.
    (Left out above: wall-clock seconds, and the object graph, which holds Keras's per-process optimizer names.)"""
    readers = [tf.train.load_checkpoint(str(p)) for p in (prefix, other)]
    keys = readers[0].get_variable_to_shape_map()
    assert keys == readers[1].get_variable_to_shape_map()
    keys = [k for k in keys if compared(k)]
    assert any(k.startswith(("model/", "optimizer/_trainable_variables/")) for k in keys), keys
    for key in keys:
        values = [reader.get_tensor(key) for reader in readers]
        assert np.array_equal(*values, equal_nan=key.startswith("eval.")), key   # no evaluation yet: NaN in both


def test_the_issue_s_flipped_bytes_resume_in_a_fresh_process(run):
    """As reported: flipped bytes in the newest data file, then `train.py --resume` (a new process)."""
    names, steps = _checkpoints(run)
    _flip_bytes(_data_file(run, names[-1]))
    proc = run_cli(["--resume", f"runs/{NAME}", "--total-steps", str(steps[-2])], cwd=run.parent.parent)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert (f"resume: skipped checkpoint {names[-1]} (data file checksum mismatch); using {names[-2]}"
            in proc.stderr.splitlines())


# --- refusals: nothing in the run folder changes -------------------------------------------------------------------

def test_no_intact_checkpoint_is_one_line_exit_2_and_changes_nothing(run, capsys):
    names, _ = _checkpoints(run)
    for name in names:
        _flip_bytes(_data_file(run, name))
    before = _digest(run.parent.parent)
    assert _resume() == 2
    details = ", ".join(f"{name}: data file checksum mismatch" for name in reversed(names))
    assert _error_line(capsys, "train.py:") == (
        f"train.py: error: --resume {run}: no intact checkpoint in {run / 'checkpoints'} ({details}); restore the "
        "folder from a backup, or start a new run without --resume")
    assert _digest(run.parent.parent) == before   # events, config, checkpoints, summary, export


@pytest.mark.parametrize("cut", [0.5, 0.0], ids=["cut-short", "empty"])
def test_a_damaged_config_json_is_one_line_exit_2_and_changes_nothing(run, capsys, cut):
    config = run / "config.json"
    config.write_bytes(config.read_bytes()[: int(config.stat().st_size * cut)])
    before = _digest(run.parent.parent)
    assert _resume() == 2
    line = _error_line(capsys, "train.py:")
    assert re.fullmatch(re.escape(f"train.py: error: {config} is damaged (not valid JSON: ") + r".*\); restore it from "
                        r"a backup \(or copy config.json from a run with the same flags\), or start a new run without "
                        r"--resume", line), line
    assert _digest(run.parent.parent) == before


def test_a_config_json_value_out_of_bounds_is_damage_but_a_bad_flag_is_the_flag(run, capsys):
    config = run / "config.json"
    saved = json.loads(config.read_text())
    config.write_text(json.dumps({**saved, "lr": -1.0}))
    before = _digest(run.parent.parent)
    assert _resume() == 2
    assert _error_line(capsys, "train.py:") == (
        f"train.py: error: {config} is damaged (--lr must be > 0.0, got -1.0); restore it from a backup (or copy "
        "config.json from a run with the same flags), or start a new run without --resume")
    assert _digest(run.parent.parent) == before
    config.write_text(json.dumps(saved))
    assert _resume("--total-steps", "0") == 2
    assert _error_line(capsys, "train.py:") == "train.py: error: --total-steps must be a positive integer, got 0"


# --- writes that fail: the previous checkpoint and export stay intact ------------------------------------------------

def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_checkpoint_write_failing_stops_with_one_line_exit_1(run, capsys, monkeypatch):
    names, steps = _checkpoints(run)
    checkpoints, export = _digest(run / "checkpoints"), _digest(run.parent.parent / "saved_models")
    monkeypatch.setattr(tf.train.Checkpoint, "write", _no_space)
    assert _resume("--total-steps", str(steps[-1] + 1000)) == 1
    line = _error_line(capsys, "train.py:")
    assert re.fullmatch(re.escape("train.py: error: checkpoint ckpt-") + r"\d+" + re.escape(
        f" could not be written to {run / 'checkpoints'} (No space left on device); the last good checkpoint is "
        f"{names[-1]}; fix the cause, then continue with: python train.py --resume {run}"), line), line
    assert _digest(run / "checkpoints") == checkpoints
    assert _digest(run.parent.parent / "saved_models") == export


def test_an_export_failing_stops_with_one_line_exit_1(run, capsys, monkeypatch):
    names, steps = _checkpoints(run)
    export_dir = run.parent.parent / "saved_models"
    export = _digest(export_dir)
    monkeypatch.setattr(tf.saved_model, "save", _no_space)
    assert _resume("--total-steps", str(steps[-1])) == 1   # the budget is reached: straight to the export
    assert _error_line(capsys, "train.py:") == (
        f"train.py: error: the export to {export_dir / NAME} failed (No space left on device); the previous export "
        f"there is unchanged; the last good checkpoint is {names[-1]}; fix the cause, then finish the run and its "
        f"export with: python train.py --resume {run}")
    assert _digest(export_dir) == export
    assert sorted(os.listdir(export_dir)) == [NAME]   # no staging folder left


# --- damaged exports: python -m tfpg.evaluate and tfpg-export -------------------------------------------------------

@pytest.fixture
def model(run):
    return run.parent.parent / "saved_models" / NAME


def test_a_garbage_saved_model_pb_is_one_line_exit_2(model, capsys):
    (model / "saved_model.pb").write_bytes(os.urandom(2000))
    expected = (f"{model / 'saved_model.pb'} is damaged or not loadable by this TensorFlow (not a SavedModel "
                "protobuf); re-export the model (or restore the folder from a backup)")
    assert evaluate.main([str(model), "--episodes", "1"]) == 2
    assert _error_line(capsys, "evaluate:") == f"evaluate: error: {expected}"
    assert export_formats.main([str(model), "--format", "onnx", "--output", str(model) + ".onnx"]) == 2
    assert _error_line(capsys, "tfpg-export:") == f"tfpg-export: error: {expected}"
    assert not os.path.exists(str(model) + ".onnx")


@pytest.mark.parametrize("content, why", [
    (b'{"format_version": 1, "env_id": "CartPole-v1", "observation_', r"not valid JSON: .*"),
    (b'{"format_version": 1, "env_id": "CartPole-v1"}', r'no valid "observation_space" entry'),
], ids=["cut-short", "no-spaces"])
def test_damaged_export_metadata_is_one_line_exit_2(model, capsys, content, why):
    meta = model / "tfpg_metadata.json"
    meta.write_bytes(content)
    assert evaluate.main([str(model), "--episodes", "1"]) == 2
    line = _error_line(capsys, "evaluate:")
    assert re.fullmatch(re.escape(f"evaluate: error: {meta} is damaged (") + why + re.escape(
        "); re-export the model (or restore the folder from a backup)"), line), line


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_damaged_converted_files_are_one_line_exit_2(tmp_path, capsys, suffix):
    shipped = os.path.join(ROOT, "saved_models", "cartpole-reinforce" + suffix)
    model = tmp_path / ("m" + suffix)
    model.write_bytes(os.urandom(3000))
    shutil.copy(shipped + ".json", str(model) + ".json")
    assert evaluate.main([str(model), "--episodes", "1"]) == 2
    line = _error_line(capsys, "evaluate:")
    assert line.startswith(f"evaluate: error: {model} is damaged or not loadable by ") and line.endswith(
        "; convert the model again with tfpg-export"), line
    model.write_bytes(open(shipped, "rb").read())
    (tmp_path / (model.name + ".json")).write_text('{"env_id": "CartPole-v1", "deploy')
    assert evaluate.main([str(model), "--episodes", "1"]) == 2
    assert _error_line(capsys, "evaluate:").startswith(f"evaluate: error: {model}.json is damaged (not valid JSON: ")
