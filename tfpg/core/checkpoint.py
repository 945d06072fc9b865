"""Checkpoints that let a run continue exactly: tf.train.Checkpoint files + TF's checkpoint-state file.

What a checkpoint holds: every trackable the algorithm registers (networks, optimizers with their
slots, log-std, RNG generators) plus named arrays (counters, the reward_100 window, baseline
state, numpy RNG state) stored as variables of the same checkpoint, so all of it is written and
restored together.

Crash safety: checkpoint N is written under a staging name (`ckpt-N.partial.*`) and its files are
renamed to `ckpt-N.*` once complete; only then is the state file (which names the latest
checkpoint) replaced, atomically, by TensorFlow's own `update_checkpoint_state`. A kill in between
leaves orphan files and the previous checkpoint as the latest, never a half-written "latest". A
write that fails (disk full, read-only folder) removes its own partial files, leaves the previous
checkpoints as they were and raises SaveError.

Damage from outside (flipped bytes, truncated or missing files, a state file naming a checkpoint
that is gone): `find_intact_checkpoint` reads every tensor of each candidate, newest first, with
TensorFlow's own checksums, before anything is loaded or written, and `restore_intact_checkpoint`
loads the newest intact one (all or nothing) and reports what it skipped and why.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfpg.core.errors import ConfigError, SaveError, one_line
from tfpg.core.fields import kind

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "checkpoint"        # TF's checkpoint-state file: a text protobuf naming the latest checkpoint
STAGING_SUFFIX = ".partial"      # checkpoint N is written as ckpt-N.partial.* and renamed when complete
_CKPT_INDEX = re.compile(r"ckpt-(\d+)\.index")
_STATE_LINE = re.compile(r'\s*(\w+)\s*:\s*(?:"([^"\\]*)"|([-+0-9.eE]+))\s*')
_STATE_PATH_KEYS = {"model_checkpoint_path", "all_model_checkpoint_paths"}
_STATE_NUMBER_KEYS = {"all_model_checkpoint_timestamps", "last_preserved_timestamp"}
# Substrings of TensorFlow's messages -> the short reason shown to the user.
_DAMAGE_REASONS = (("Checksum does not match", "data file checksum mismatch"),
                   ("Read less bytes", "data file truncated"),
                   ("sstable", "index file damaged"),
                   ("block checksum", "index file damaged"),
                   (".index", "index file damaged"),
                   ("No such file", "data file missing"))


class TrainingCheckpoint:
    def __init__(self, run_dir: str, trackables: dict, arrays: dict[str, np.ndarray], keep: int = 3):
        """`arrays` gives the name, shape and dtype of every array the run saves besides trackables."""
        self.directory = os.path.join(run_dir, CHECKPOINT_DIR)
        self.keep = keep
        self._arrays = {name: tf.Variable(np.asarray(value), trainable=False, name=name, shape=tf.TensorShape(None))
                        for name, value in arrays.items()}
        self._checkpoint = tf.train.Checkpoint(**trackables, **self._arrays)
        self.last_restore: RestoreResult | None = None

    def save(self, env_steps: int, arrays: dict[str, np.ndarray]) -> str:
        """Write checkpoint `ckpt-<env_steps>`, make it the latest, keep the newest `keep`; returns its prefix.

        Raises SaveError when the write fails for an outside reason (OSError, or TensorFlow's I/O
        errors): the failed checkpoint's files are removed, the earlier checkpoints and the state
        file are left untouched.
        """
        for name, value in arrays.items():
            self._arrays[name].assign(np.asarray(value))
        name = f"ckpt-{env_steps}"
        try:
            os.makedirs(self.directory, exist_ok=True)
            _remove_staged(self.directory)
            prefix = self._write_files(name)
        except (OSError, tf.errors.OpError) as e:
            _remove_staged(self.directory)
            raise self._save_error(name, e) from e
        self._point_to(prefix)
        return prefix

    def _point_to(self, prefix: str) -> None:
        """Make `prefix` the latest checkpoint (its data files are complete) and delete the oldest beyond `keep`.

        SaveError if the state file cannot be written: the new checkpoint's files are removed (unless
        the state file already named it), the state file and the earlier checkpoints are left as they were."""
        name = os.path.basename(prefix)   # relative names: the run folder can be moved
        named_before, _ = read_state_file(self.directory)
        # Newest first: the state file's order, then files it does not name (left by a kill before this step).
        # Only checkpoints still on disk count towards `keep`: a pointer to one that is gone must not evict real ones.
        history = list(dict.fromkeys(named_before + checkpoint_files_on_disk(self.directory)))
        previous = [n for n in reversed(history) if n != name and os.path.isfile(os.path.join(self.directory, n + ".index"))]
        kept = (previous + [name])[-self.keep:]
        logger, level = tf.get_logger(), tf.get_logger().level
        logger.setLevel("ERROR")   # its deprecation notice (CheckpointManager cannot keep a chosen list of files)
        try:   # TF writes the state file atomically (temp file + rename).
            tf.compat.v1.train.update_checkpoint_state(self.directory, name, all_model_checkpoint_paths=kept)
        except (OSError, tf.errors.OpError) as e:
            if name not in named_before:
                _remove_checkpoint_files(self.directory, name)
            raise self._save_error(name, e) from e
        finally:
            logger.setLevel(level)
        for old in set(previous + checkpoint_files_on_disk(self.directory)) - set(kept):
            _remove_checkpoint_files(self.directory, old)

    def _write_files(self, name: str) -> str:
        """Write the checkpoint under its staging name, then rename its files to `name` (index last)."""
        staged = self._checkpoint.write(os.path.join(self.directory, name + STAGING_SUFFIX))
        final = os.path.join(self.directory, name)
        for data in sorted(glob.glob(glob.escape(staged) + ".data-*")):
            os.replace(data, final + data[len(staged):])
        os.replace(staged + ".index", final + ".index")
        return final

    def _save_error(self, name: str, error: BaseException) -> SaveError:
        """The one-line SaveError for checkpoint `name`, naming the cause and the last good checkpoint."""
        last = last_good_checkpoint(self.directory)
        run_dir = os.path.dirname(self.directory)
        where = (f"the last good checkpoint is {last}; fix the cause, then continue with: python train.py --resume {run_dir}"
                 if last else "no earlier checkpoint of this run exists")
        return SaveError(f"checkpoint {name} could not be written to {self.directory} ({one_line(error)}); {where}")

    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def restore(self, validated: RestoreResult | None = None) -> dict[str, np.ndarray]:
        """Load the newest intact checkpoint into the trackables; return the saved arrays.

        `self.last_restore` tells which checkpoint was used and which newer ones were skipped
        (`self.last_restore.message()` is the one line to print). ConfigError if none is intact.
        `validated`: the result of an earlier `find_intact_checkpoint(self.directory)`, to skip
        reading the files a second time.
        """
        self.last_restore = restore_intact_checkpoint(self.directory, self._checkpoint,
                                                      no_rollback=self._arrays.values(), validated=validated)
        return {name: var.numpy() for name, var in self._arrays.items()}


@dataclass
class RestoreResult:
    """The checkpoint a resume uses, the newer ones skipped with a short reason each, and any state-file problem."""
    prefix: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    state_problem: str | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.prefix)

    def message(self) -> str | None:
        """One line for the user when the newest checkpoint was not used, e.g.
        'resume: skipped checkpoint ckpt-15000 (data file checksum mismatch); using ckpt-10000'; else None."""
        parts = [f"the checkpoint state file {self.state_problem}"] if self.state_problem else []
        if self.skipped:
            noun = "checkpoint" if len(self.skipped) == 1 else "checkpoints"
            parts.append(f"skipped {noun} " + ", ".join(f"{name} ({reason})" for name, reason in self.skipped))
        return "resume: " + "; ".join(parts + [f"using {self.name}"]) if parts else None


def read_state_file(directory: str) -> tuple[list[str], str | None]:
    """The checkpoint names TF's state file lists, newest first, and a one-line problem ('is missing',
    'is damaged (...)') if it cannot be used. Parsed here, strictly, so damage never becomes a traceback."""
    try:
        with open(os.path.join(directory, STATE_FILE), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return [], "is missing"
    except (OSError, UnicodeDecodeError) as e:
        return [], f"is unreadable ({one_line(e)})"
    latest, listed = None, []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _STATE_LINE.fullmatch(line)
        key = m and m.group(1)
        if not m or not ((key in _STATE_PATH_KEYS and m.group(2)) or (key in _STATE_NUMBER_KEYS and m.group(3))):
            return [], f"is damaged (line {number} is not a checkpoint entry)"
        if key == "model_checkpoint_path":
            latest = os.path.basename(m.group(2))
        elif key == "all_model_checkpoint_paths":
            listed.append(os.path.basename(m.group(2)))
    if latest is None:
        return [], "is damaged (it names no latest checkpoint)"
    return list(dict.fromkeys([latest] + listed[::-1])), None


def checkpoint_files_on_disk(directory: str) -> list[str]:
    """Names `ckpt-N` that have an index file in `directory`, newest env step first."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    steps = sorted((int(m.group(1)) for m in map(_CKPT_INDEX.fullmatch, entries) if m), reverse=True)
    return [f"ckpt-{step}" for step in steps]


def last_good_checkpoint(directory: str) -> str | None:
    """The newest checkpoint the state file names whose index file exists (no content check), or None."""
    named, _ = read_state_file(directory)
    return next((n for n in named if os.path.isfile(os.path.join(directory, n + ".index"))), None)


def checkpoint_damage(prefix: str) -> str | None:
    """None if the checkpoint at `prefix` is intact, else a short reason ('data file checksum mismatch',
    'index file damaged', 'data file missing', ...). Reads every tensor, so TF verifies the index's
    block checksums and each tensor's checksum; writes nothing and loads nothing into live objects."""
    if not os.path.isfile(prefix + ".index"):
        return "index file missing" if glob.glob(glob.escape(prefix) + ".data-*") else "its files are missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except (tf.errors.OpError, OSError, ValueError, IndexError, RuntimeError) as e:   # TF's kind depends on where
        return _damage_reason(e)
    return None


def _damage_reason(error: BaseException) -> str:
    """The short reason for a checkpoint-reading error."""
    text = one_line(error)
    return next((reason for needle, reason in _DAMAGE_REASONS if needle in text), f"unreadable: {text}")


def find_intact_checkpoint(directory: str) -> RestoreResult:
    """The newest intact checkpoint in `directory`, validated file by file before anything is loaded
    or written. Candidates: the ones the state file names (its latest first), then any other
    `ckpt-N.index` in the folder, newest env step first. ConfigError (one line) if none is intact."""
    named, state_problem = read_state_file(directory)
    names = list(dict.fromkeys(named + checkpoint_files_on_disk(directory)))
    if not names:
        raise ConfigError(f"no checkpoint in {directory}; it was never written (train with --checkpoint-every N, "
                          "or stop the run with Ctrl-C, to get one)")
    skipped = []
    for name in names:
        reason = checkpoint_damage(os.path.join(directory, name))
        if reason is None:
            return RestoreResult(os.path.join(directory, name), skipped, state_problem)
        skipped.append((name, reason))
    details = ", ".join(f"{name}: {reason}" for name, reason in skipped)
    raise ConfigError(f"no intact checkpoint in {directory} ({details}); restore the folder from a backup, "
                      "or start a new run without --resume")


def restore_intact_checkpoint(directory: str, checkpoint: tf.train.Checkpoint, no_rollback: Iterable = (),
                              validated: RestoreResult | None = None) -> RestoreResult:
    """Validate the checkpoints in `directory` newest first (`find_intact_checkpoint`; skipped when
    `validated`, its earlier result, is given), then load the newest intact one into `checkpoint`'s
    objects. The load is all or nothing: if it fails part-way (the checkpoint does not fit the
    objects), every variable gets its previous value back, except those in `no_rollback` (scratch
    variables whose values the caller reads only after success), and a one-line ConfigError is raised."""
    result = validated or find_intact_checkpoint(directory)
    skip = {id(v) for v in no_rollback}
    variables = [v for v in _variables(checkpoint) if id(v) not in skip]
    before = [v.numpy() for v in variables]
    try:
        checkpoint.read(result.prefix).assert_consumed()
    except Exception as e:   # shape/structure mismatch: TF raises ValueError, AssertionError, OpError, ...
        for variable, value in zip(variables, before):
            variable.assign(value)
        raise ConfigError(f"checkpoint {result.prefix} does not fit this run ({one_line(e)}); it was written by "
                          "another configuration or tfpg version: start a new run without --resume") from e
    return result


def _variables(root) -> list:
    """Every variable reachable from `root`: tf.Variables, Keras variables, RNG generator states."""
    return [t for t in tf.train.TrackableView(root).descendants()
            if callable(getattr(t, "assign", None)) and callable(getattr(t, "numpy", None))]


def _remove_checkpoint_files(directory: str, name: str) -> None:
    """Delete checkpoint `name`'s files (and its staging files); errors are ignored (a later save retries)."""
    for path in glob.glob(os.path.join(glob.escape(directory), glob.escape(name) + ".*")):
        _remove(path)


def _remove_staged(directory: str) -> None:
    """Delete what an unfinished write left under a staging name (files and TF's `_temp` folder)."""
    for path in glob.glob(os.path.join(glob.escape(directory), f"ckpt-*{STAGING_SUFFIX}*")):
        _remove(path)


def _remove(path: str) -> None:
    try:
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    except OSError:
        pass


def latest_checkpoint(run_dir: str) -> str | None:
    return tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR))


def rng_state_to_array(rng: np.random.Generator) -> np.ndarray:
    """A numpy Generator's full state as a byte array (JSON inside, no pickle)."""
    return np.frombuffer(json.dumps(rng.bit_generator.state).encode(), dtype=np.uint8)


def rng_state_from_array(rng: np.random.Generator, array: np.ndarray) -> None:
    rng.bit_generator.state = json.loads(bytes(np.asarray(array, dtype=np.uint8)).decode())


def env_reset_seed(seed: int, env_steps: int) -> int:
    """The seed for re-seeding the envs after the checkpoint at `env_steps` (same on resume)."""
    return int(np.random.SeedSequence([seed, env_steps]).generate_state(1)[0] % (2**31))


def dataclass_arrays(obj) -> dict[str, np.ndarray]:
    """A dataclass's fields as named arrays: the one declaration of what a checkpoint keeps of it."""
    return {f.name: np.asarray(getattr(obj, f.name), dtype=_DTYPES[_base(f)]) for f in dataclasses.fields(obj)}


def load_dataclass_arrays(obj, arrays: dict[str, np.ndarray]) -> None:
    """Set each field of `obj` from `dataclass_arrays`' output (the inverse)."""
    for f in dataclasses.fields(obj):
        value = np.asarray(arrays[f.name])
        setattr(obj, f.name, value.tolist() if _base(f).startswith("list") else _SCALARS[_base(f)](value))


def _base(f: dataclasses.Field) -> str:
    return kind(f)[0]


_DTYPES = {"int": np.int64, "float": np.float64, "bool": np.bool_, "list[float]": np.float64, "list[int]": np.int64}
_SCALARS = {"int": int, "float": float, "bool": bool}
