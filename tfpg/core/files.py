"""Reading a run's own JSON files (config.json, an export's metadata) with damage turned into
one-line ConfigErrors that name the file and what to do.

Imports nothing heavy, so the command line can check a run folder before TensorFlow loads.
"""
from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping

from tfpg.core.errors import ConfigError, one_line

CONFIG_FILE = "config.json"
METADATA_FILE = "tfpg_metadata.json"   # beside an export's saved_model.pb
# What acting with an exported policy needs from its metadata (an export's, or a converted file's FILE.json).
POLICY_FIELDS = {"env_id": str, "observation_space": dict, "action_space": dict}
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
RESTORE_CONFIG = ("restore it from a backup (or copy config.json from a run with the same flags), "
                   "or start a new run without --resume")


def load_json_object(path: str, what_to_do: str) -> dict:
    """The JSON object stored in `path`. A missing, unreadable, truncated or invalid file, or one that
    holds something other than an object, raises a one-line ConfigError: '<path> is damaged (<why>); <what_to_do>'."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"{path} is unreadable ({one_line(e)}); {what_to_do}") from None
    try:
        value = json.loads(data)
    except ValueError as e:   # JSONDecodeError, UnicodeDecodeError
        raise ConfigError(f"{path} is damaged (not valid JSON: {one_line(e)}); {what_to_do}") from None
    if not isinstance(value, dict):
        kind = _JSON_TYPES.get(type(value), "value")
        raise ConfigError(f"{path} is damaged (it holds a JSON {kind}, not an object); {what_to_do}")
    return value


def require_fields(metadata: dict, path: str, fields: Mapping[str, type], what_to_do: str) -> None:
    """One-line ConfigError '<path> is damaged (no valid "<key>" entry); <what_to_do>' unless every key of
    `fields` is in `metadata` with a value of its type."""
    for key, kind in fields.items():
        if not isinstance(metadata.get(key), kind):
            raise ConfigError(f"{path} is damaged (no valid \"{key}\" entry); {what_to_do}")


def read_run_config(run_dir: str, fields_by_algo: Mapping[str, Collection[str]]) -> dict:
    """The saved configuration of `run_dir` as a dict, after checking that config.json is a JSON
    object whose "algo" is one of `fields_by_algo` and whose keys are all fields of that algorithm.

    Any damage (missing, unreadable, truncated or invalid JSON, not an object, unknown algorithm or
    fields) raises a one-line ConfigError naming the file and what to do. Values are not checked here
    (the config's own validation does that); nothing is written.
    """
    path = os.path.join(os.path.abspath(run_dir), CONFIG_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"{path} does not exist; pass a run folder written by train.py (runs/<run-name>)")
    saved = load_json_object(path, RESTORE_CONFIG)
    algo = saved.get("algo")
    if not isinstance(algo, str) or algo not in fields_by_algo:
        known = ", ".join(sorted(fields_by_algo))
        raise ConfigError(f"{path} is damaged (\"algo\" is {algo!r}, this tfpg has {known}); {RESTORE_CONFIG}")
    unknown = sorted(set(saved) - set(fields_by_algo[algo]))
    if unknown:
        raise ConfigError(f"{path} has fields that --algo {algo} does not know ({', '.join(unknown)}); it was "
                          "written by another tfpg version or edited: remove them, or start a new run without --resume")
    return saved
