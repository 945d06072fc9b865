"""Re-export a tfpg SavedModel in the current format, with the same weights and metadata.

    python benchmarks/reexport_shipped.py saved_models/cartpole-reinforce saved_models/lunarlander-pg

Exports written before the session-loader fix load with `tf.saved_model.load` but not with
`saved_model_cli run` / TF Serving. This rebuilds the policy from the export's metadata (policy kind,
hidden sizes, activation, observation normalisation), reads the old variables into it, checks that
the new export gives the old one's outputs on a batch of observations, and replaces the export
atomically. The metadata (tfpg_metadata.json and the metadata_json variable) is carried over as is.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def build_policy(metadata: dict):
    """A fresh policy of the architecture `metadata` describes (reinforce family or DQN)."""
    from tfpg.envs import make as envs_lib
    from tfpg.models.policies import make_policy

    spaces = envs_lib.env_spaces(metadata["env_id"])
    config = metadata.get("config", {})
    if metadata.get("algorithm") == "dqn":
        from tfpg.algos.dqn.algorithm import QPolicy

        return QPolicy(spaces.observation_space, spaces.action_space, tuple(config["hidden"]))
    return make_policy(metadata["policy"], spaces.observation_space, spaces.action_space, tuple(config["hidden"]),
                       config.get("seed", 0), config.get("normalize_obs", False), config.get("activation", "relu"),
                       config.get("log_std_init", 0.0))


def outputs(path: str, obs: np.ndarray) -> dict:
    """{signature/key: array} of the deterministic signatures of the export at `path`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    return {f"{name}/{key}": value.numpy() for name, fn in loaded.signatures.items() if name != "sample"
            for key, value in fn(observations=tf.constant(obs)).items()}


def reexport(path: str) -> None:
    """Rebuild, restore, export beside `path`, compare, then swap the new export in."""
    from tfpg.export.saved_model import export_policy, read_metadata, restore_policy_variables

    metadata = read_metadata(path)
    policy = build_policy(metadata)
    restore_policy_variables(policy, path)
    space = policy.observation_space
    obs = np.random.default_rng(0).uniform(np.maximum(space.low, -3), np.minimum(space.high, 3),
                                           size=(256, *space.shape)).astype(space.dtype)
    staged = os.path.join(tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(path))), "new")
    try:
        export_policy(policy, metadata, staged)
        before, after = outputs(path, obs), outputs(staged, obs)
        assert sorted(before) == sorted(after), (sorted(before), sorted(after))
        for key in before:
            np.testing.assert_array_equal(before[key], after[key], err_msg=key)
        with open(os.path.join(path, "tfpg_metadata.json")) as f, open(os.path.join(staged, "tfpg_metadata.json")) as g:
            assert json.load(f) == json.load(g)
        export_policy(policy, metadata, path, overwrite=True)
    finally:
        shutil.rmtree(os.path.dirname(staged), ignore_errors=True)
    print(f"{path}: re-exported; {len(before)} outputs identical on {len(obs)} observations")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", help="tfpg export folders to rewrite in place")
    for path in p.parse_args(argv).paths:
        reexport(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
