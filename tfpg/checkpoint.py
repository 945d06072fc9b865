"""Checkpoints that let a run continue exactly: tf.train.Checkpoint files + TF's checkpoint-state file.

What a checkpoint holds: every trackable the algorithm registers (networks, optimizers with their
slots, log-std, RNG generators) plus named arrays (counters, the reward_100 window, baseline
state, numpy RNG state) stored as variables of the same checkpoint, so all of it is written and
restored together.

Crash safety: the data files of checkpoint N are written first; only then is the state file
(which names the latest checkpoint) replaced, atomically, by TensorFlow's own
`update_checkpoint_state`. A kill in between leaves orphan files and the previous checkpoint
as the latest, never a half-written "latest".
"""
from __future__ import annotations

import glob
import json
import dataclasses
import os

import numpy as np
import tensorflow as tf

from tfpg.errors import ConfigError

CHECKPOINT_DIR = "checkpoints"


class TrainingCheckpoint:
    def __init__(self, run_dir: str, trackables: dict, arrays: dict[str, np.ndarray], keep: int = 3):
        """`arrays` gives the name, shape and dtype of every array the run saves besides trackables."""
        self.directory = os.path.join(run_dir, CHECKPOINT_DIR)
        self.keep = keep
        self._arrays = {name: tf.Variable(np.asarray(value), trainable=False, name=name, shape=tf.TensorShape(None))
                        for name, value in arrays.items()}
        self._checkpoint = tf.train.Checkpoint(**trackables, **self._arrays)

    def save(self, env_steps: int, arrays: dict[str, np.ndarray]) -> str:
        os.makedirs(self.directory, exist_ok=True)
        for name, value in arrays.items():
            self._arrays[name].assign(np.asarray(value))
        prefix = self._checkpoint.write(os.path.join(self.directory, f"ckpt-{env_steps}"))
        self._point_to(prefix)
        return prefix

    def _point_to(self, prefix: str) -> None:
        """Make `prefix` the latest checkpoint (its data files are complete) and delete the oldest beyond `keep`."""
        name = os.path.basename(prefix)   # relative names: the run folder can be moved
        state = tf.train.get_checkpoint_state(self.directory)
        previous = [os.path.basename(p) for p in (state.all_model_checkpoint_paths if state else [])]
        previous = [p for p in previous if p != name]
        kept = (previous + [name])[-self.keep:]
        # TF writes the state file atomically (temp file + rename).
        tf.compat.v1.train.update_checkpoint_state(self.directory, name, all_model_checkpoint_paths=kept)
        for old in previous:
            if old not in kept:
                for f in glob.glob(os.path.join(self.directory, old + ".*")):
                    os.remove(f)

    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def restore(self) -> dict[str, np.ndarray]:
        """Load the latest complete checkpoint into the trackables; return the saved arrays."""
        prefix = self.latest()
        if prefix is None:
            raise ConfigError(f"no checkpoint in {self.directory}; it was never written (train with --checkpoint-every)")
        self._checkpoint.read(prefix).assert_consumed()
        return {name: var.numpy() for name, var in self._arrays.items()}


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
    from tfpg.options import kind

    return kind(f)[0]


_DTYPES = {"int": np.int64, "float": np.float64, "bool": np.bool_, "list[float]": np.float64, "list[int]": np.int64}
_SCALARS = {"int": int, "float": float, "bool": bool}
