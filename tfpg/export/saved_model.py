"""SavedModel export: a tf.Module with plain-tensor signatures and the run's metadata.

The exported directory loads with `tf.saved_model.load` in a process that has only TensorFlow:

  serving_default(observations) -> {"action"}   greedy / deterministic action (every policy; Gaussian:
                                                 the mean, clipped to the action bounds)
  sample(observations)          -> {"action"}   an action drawn from the policy, clipped to the bounds
                                                 (stochastic policies)
  distribution(observations)    -> the distribution's parameters: {"logits"} (categorical),
                                   {"mean", "log_std"} (Gaussian, unclipped mean)  (stochastic policies)
  q_values(observations)        -> {"q_values"} one value per action               (Q-learning policies)
  metadata_json                 a tf.string Variable: algorithm, env id, spaces, steps, reward_100

Which members a policy gets follows from what it offers: `sample` and `distribution_params` make a stochastic
policy, `q_values` a value-based one; `mode` (the greedy action) is required.

Every signature also runs in TensorFlow's session-based loader, the one `saved_model_cli run` and
TF Serving use. A Keras 3 model held as a module attribute is not enough for it: its `keras.Variable`s
wrap the `tf.Variable`s the graph reads, and that loader only restores variables the module tracks
itself ("Could not find variable out/bias"). So the module tracks the underlying `tf.Variable`s instead
of the Keras model (`model` is the list of them, in `model.weights` order), as `keras.export.ExportArchive`
does; tracking both would store every weight twice.

A SavedModel is a program: load only exports from sources you trust.
"""
from __future__ import annotations

import glob
import json
import math
import os
import shutil
import tempfile

import tensorflow as tf

from tfpg.core.checkpoint import checkpoint_damage
from tfpg.core.errors import ConfigError, SaveError, one_line
from tfpg.core.files import METADATA_FILE, POLICY_FIELDS, load_json_object, require_fields

FORMAT_VERSION = 1
_REEXPORT = "re-export the model (or restore the folder from a backup)"


class ExportedPolicy(tf.Module):
    """Tracks the variables the policy's graph reads (`policy.trackables`: the Keras model's weights as
    tf.Variables, a Gaussian's log-std, the observation statistics) and traces the signatures from the
    policy's own methods, so raw observations in give exactly the in-process actions out."""

    def __init__(self, policy, metadata: dict):
        super().__init__(name="tfpg_policy")
        for name, value in exported_trackables(policy).items():
            setattr(self, name, value)
        self.rng = tf.random.Generator.from_non_deterministic_state()
        self.metadata_json = tf.Variable(json.dumps(metadata, sort_keys=True), trainable=False, dtype=tf.string)
        spec = tf.TensorSpec([None, *policy.observation_space.shape],
                             tf.as_dtype(policy.observation_space.dtype), name="observations")

        def greedy(observations):
            return {"action": policy.mode(observations)}

        def sample(observations):
            seed = tf.cast(self.rng.make_seeds(1)[:, 0], tf.int32)
            return {"action": policy.clip_action(policy.sample(observations, seed))}

        def distribution(observations):
            return policy.distribution_params(observations)

        def q_values(observations):
            return {"q_values": policy.q_values(observations)}

        self.greedy = tf.function(greedy, input_signature=[spec])
        if hasattr(policy, "sample") and hasattr(policy, "distribution_params"):
            self.sample = tf.function(sample, input_signature=[spec])
            self.distribution = tf.function(distribution, input_signature=[spec])
        if hasattr(policy, "q_values"):
            self.q_values = tf.function(q_values, input_signature=[spec])

    def serving_signatures(self) -> dict:
        """{signature name: tf.function} for the members this policy has."""
        names = {"serving_default": "greedy", "sample": "sample", "distribution": "distribution",
                 "q_values": "q_values"}
        return {sig: getattr(self, attr) for sig, attr in names.items() if hasattr(self, attr)}


def exported_trackables(policy) -> dict:
    """{name: tf.Variable or list of tf.Variables}: `policy.trackables` with each Keras model replaced by
    the `tf.Variable`s behind its weights (a `keras.Variable` on the TensorFlow backend holds its
    `tf.Variable` as `.value`). Tracking these is what lets the session-based loader find the variables
    the traced graphs read."""
    import keras

    def as_tf_variable(v):
        tf_var = v.value if isinstance(v, keras.Variable) else v
        if not isinstance(tf_var, tf.Variable):
            raise TypeError(f"cannot export {v!r}: it is not backed by a tf.Variable")
        return tf_var

    return {name: [as_tf_variable(v) for v in t.weights] if isinstance(t, keras.Layer) else as_tf_variable(t)
            for name, t in policy.trackables.items()}


def export_policy(policy, metadata: dict, path: str, overwrite: bool = False) -> str:
    """Save `policy` as a SavedModel at `path`, atomically.

    The model is written into a temporary directory beside `path` and renamed into place, so
    an interrupted export leaves the previous export (or nothing), never a partial directory.
    A write that fails for an outside reason (disk full, read-only folder) removes the temporary
    directory, leaves the previous export as it was and raises a one-line SaveError.
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise ConfigError(f"export directory {path} already exists; pass --overwrite or choose another --export-dir/--run-name")
    metadata = {"format_version": FORMAT_VERSION, **metadata}
    module = ExportedPolicy(policy, metadata)
    tmp = None
    try:
        tmp = _staging_dir(path)
        tf.saved_model.save(module, tmp, signatures=module.serving_signatures())
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(metadata, f, indent=2, sort_keys=True)
        _swap_into_place(tmp, path)
    except (OSError, tf.errors.OpError) as e:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise _export_error(path, e) from e
    except BaseException:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _staging_dir(path: str) -> str:
    """A new temporary directory beside `path`, after removing those that killed exports left behind."""
    parent, base = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    for stale in glob.glob(os.path.join(parent, f".{base}.tmp-*")) + glob.glob(os.path.join(parent, f".{base}.old-*")):
        shutil.rmtree(stale, ignore_errors=True)   # left by an export that was killed
    tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-", dir=parent)
    os.chmod(tmp, 0o755)   # mkdtemp's 0700 would hide the export from a model server running as another user
    return tmp


def _swap_into_place(staged: str, path: str) -> None:
    """Rename the staged export to `path`; an existing export is first moved aside, then deleted.

    A kill at any point leaves the old export or none (never a partial one) plus hidden
    leftovers that the next export removes. If the final rename fails (OSError), the old export
    is put back before the error is raised."""
    parent, base = os.path.dirname(path), os.path.basename(path)
    if not os.path.exists(path):
        os.rename(staged, path)
        return
    old = tempfile.mkdtemp(prefix=f".{base}.old-", dir=parent)
    os.rename(path, os.path.join(old, "x"))
    try:
        os.rename(staged, path)
    except OSError:
        os.rename(os.path.join(old, "x"), path)   # put the previous export back
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _export_error(path: str, error: BaseException) -> SaveError:
    """The one-line SaveError for a failed export to `path`: the cause and what is there now."""
    there = ("the previous export there is unchanged" if os.path.isfile(os.path.join(path, "saved_model.pb"))
             else "no export was written there")
    return SaveError(f"the export to {path} failed ({one_line(error)}); {there}")   # the caller adds what to do


def policy_metadata(config, policy, spaces, result, exported_from: dict) -> dict:
    """What tfpg_metadata.json records beside an export: algorithm, spaces, progress, config."""
    from tfpg.envs import make as envs_lib

    metadata = {
        "algorithm": config.algo, "policy": policy.kind, "env_id": config.env_id, "env_kwargs": config.env_kwargs,
        "observation_space": envs_lib.space_to_dict(spaces.observation_space),
        "action_space": envs_lib.space_to_dict(spaces.action_space),
        "env_steps": result.env_steps, "episodes": result.episodes,
        "reward_100": None if math.isnan(result.reward_100) else result.reward_100,
        "config": config.to_dict(),
    }
    if result.evaluations:
        metadata["eval_reward"] = result.eval_reward
        metadata["eval_episodes"] = config.eval_episodes
        metadata["exported_from"] = exported_from
    return metadata


def restore_policy_variables(policy, path: str) -> None:
    """Load the variables of the tfpg export at `path` into `policy`, a freshly built policy of the same
    architecture (used to re-export a model in the current format with unchanged weights).

    The SavedModel's checkpoint is read object by object (`model`, `log_std`, `obs_mean`, `obs_var`), as
    `ExportedPolicy` tracks them, or as exports before the session-loader fix did (`model` the Keras
    model itself); every variable of `policy` must be found there.
    """
    read_metadata(path)
    prefix = os.path.join(path, "variables", "variables")
    keras_model_format = any(name.startswith("model/_operations/") for name, _ in tf.train.list_variables(prefix))
    trackables = policy.trackables if keras_model_format else exported_trackables(policy)
    checkpoint = tf.train.Checkpoint(**trackables)
    status = checkpoint.read(prefix)
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ConfigError(f"the variables of {path} do not fit the policy built from its metadata ({e})") from None
    status.expect_partial()   # the old export's rng state and metadata variable are not the policy's


def _check_model_dir(path: str) -> None:
    """ConfigError unless `path` is a folder holding saved_model.pb and the metadata file."""
    if not os.path.isdir(path):
        raise ConfigError(f"no model directory at {path}; pass the folder that train.py exported (e.g. saved_models/<run>)")
    if not os.path.isfile(os.path.join(path, "saved_model.pb")) or not os.path.isfile(os.path.join(path, METADATA_FILE)):
        raise ConfigError(f"{path} is not a tfpg SavedModel (no saved_model.pb or {METADATA_FILE}); "
                          "pass a folder exported by train.py")


def read_metadata(path: str) -> dict:
    """The metadata of a tfpg export, or a one-line ConfigError if `path` is not one or its
    metadata file is damaged (invalid JSON, not an object, no env id) or of another format version."""
    _check_model_dir(path)
    meta_file = os.path.join(path, METADATA_FILE)
    metadata = load_json_object(meta_file, _REEXPORT)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{path} has export format {metadata.get('format_version')!r}, this tfpg reads "
                          f"{FORMAT_VERSION}; re-export it with this version")
    if not isinstance(metadata.get("env_id"), str):
        raise ConfigError(f"{meta_file} is damaged (it names no env_id); {_REEXPORT}")
    return metadata


def read_policy_metadata(path: str) -> dict:
    """`read_metadata`, plus what acting with the policy needs (env id, observation and action spaces)."""
    metadata = read_metadata(path)
    require_fields(metadata, os.path.join(path, METADATA_FILE), POLICY_FIELDS, _REEXPORT)
    return metadata


def load_saved_model(path: str):
    """`tf.saved_model.load(path)`, with a damaged SavedModel turned into a one-line ConfigError that
    names the damaged file: the variables are checked with TensorFlow's checksums first (reading every
    tensor), then saved_model.pb is parsed by the load itself."""
    _check_model_dir(path)
    variables = os.path.join(path, "variables")
    if not os.path.isdir(variables):
        raise ConfigError(f"{variables} is missing; {_REEXPORT}")
    damage = checkpoint_damage(os.path.join(variables, "variables"))
    if damage is not None:
        raise ConfigError(f"{variables} is damaged ({damage}); {_REEXPORT}")
    graph = os.path.join(path, "saved_model.pb")
    try:
        return tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as e:
        why = "not a SavedModel protobuf" if "Wire format" in str(e) or "Cannot parse" in str(e) else one_line(e)
        raise ConfigError(f"{graph} is damaged or not loadable by this TensorFlow ({why}); {_REEXPORT}") from None
