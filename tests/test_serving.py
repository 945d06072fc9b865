"""Every signature of every kind of exported policy runs in TensorFlow's session-based loader.

That loader (TF1 `Session` + `tf.compat.v1.saved_model.loader.load`) is the one `saved_model_cli run`
and TF Serving use; it restores only the variables the SavedModel's object graph tracks itself.
Each kind is exported, then loaded in a process without tfpg on its path: by the session loader and
by `tf.saved_model.load`, and neither may import tensorflow_probability. Deterministic outputs must
match the in-process policy (actions exactly, parameters within 1e-5); sampled actions must be
valid actions.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, run_tensorflow_only
from policy_kinds import KINDS, build, expected_outputs, export_all

from tfpg.export.saved_model import export_policy

SESSION_LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf

jobs = json.load(open(sys.argv[1]))
out = {}
for kind, job in jobs.items():
    obs = np.load(job["obs"])
    got = {"session": {}, "eager": {}}
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta_graph = tf.compat.v1.saved_model.loader.load(sess, ["serve"], job["dir"])
        for name, sig in meta_graph.signature_def.items():
            if name.startswith("__"):
                continue
            keys = sorted(sig.outputs)
            values = sess.run([sig.outputs[k].name for k in keys], {sig.inputs["observations"].name: obs})
            got["session"][name] = {k: v.tolist() for k, v in zip(keys, values)}
    loaded = tf.saved_model.load(job["dir"])
    for name, fn in loaded.signatures.items():
        got["eager"][name] = {k: v.numpy().tolist() for k, v in fn(observations=tf.constant(obs)).items()}
    out[kind] = got
out["tfpg_imported"] = any(k == "tfpg" or k.startswith("tfpg.") for k in sys.modules)
out["tfp_imported"] = "tensorflow_probability" in sys.modules
print(json.dumps(out))
"""

SIGNATURES = {"categorical": ["distribution", "sample", "serving_default"],
              "gaussian_obs_norm": ["distribution", "sample", "serving_default"],
              "dqn": ["q_values", "serving_default"],
              "cnn": ["distribution", "sample", "serving_default"]}


@pytest.fixture(scope="module")
def loaded_everywhere(tmp_path_factory):
    """{kind: (policy, obs, outputs of the session and eager loaders)} for every policy kind."""
    tmp = tmp_path_factory.mktemp("serving")
    exported = export_all(tmp)
    (tmp / "jobs.json").write_text(json.dumps({kind: job for kind, (_, _, job) in exported.items()}))
    out = run_tensorflow_only(SESSION_LOADER, tmp / "jobs.json", cwd=tmp)
    assert not out["tfpg_imported"] and not out["tfp_imported"]
    return {kind: (policy, obs, out[kind]) for kind, (policy, obs, _) in exported.items()}


@pytest.mark.parametrize("loader", ["session", "eager"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_signature_matches_the_policy(loaded_everywhere, kind, loader):
    policy, obs, got = loaded_everywhere[kind]
    outputs = got[loader]
    assert sorted(outputs) == SIGNATURES[kind]
    for signature, expected in expected_outputs(policy, obs).items():
        assert sorted(outputs[signature]) == sorted(expected)
        for key, value in expected.items():
            if key == "action" and kind != "gaussian_obs_norm":
                assert outputs[signature][key] == value.tolist()
                assert len(set(value.tolist())) > 1   # not a vacuous comparison
            else:
                np.testing.assert_allclose(outputs[signature][key], value, rtol=1e-5, atol=1e-5)
    if "sample" in outputs:
        sampled = np.asarray(outputs["sample"]["action"])
        assert sampled.shape == np.asarray(outputs["serving_default"]["action"]).shape
        assert all(policy.action_space.contains(a.astype(policy.action_space.dtype)) for a in sampled)


def saved_model_cli_run(model_dir: str, signature: str, input_expr: str) -> str:
    """stdout of `saved_model_cli run` on one signature."""
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([cli, "run", "--dir", model_dir, "--tag_set", "serve", "--signature_def", signature,
                           "--input_exprs", input_expr], check=False, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("name,obs_dim,signatures", [
    ("cartpole-reinforce", 4, ["serving_default", "distribution"]),
    ("lunarlander-pg", 8, ["serving_default", "distribution"]),
    ("lunarlander-ppo", 8, ["serving_default", "distribution"]),
])
def test_saved_model_cli_runs_the_shipped_models(name, obs_dim, signatures):
    """The command from the issue, on the shipped exports, agrees with `tf.saved_model.load`."""
    import tensorflow as tf

    model_dir = os.path.join(ROOT, "saved_models", name)
    obs = np.linspace(-0.5, 0.5, obs_dim, dtype=np.float32)[None]
    loaded = tf.saved_model.load(model_dir)
    for signature in signatures:
        stdout = saved_model_cli_run(model_dir, signature, f"observations={obs.tolist()}")
        for key, value in loaded.signatures[signature](observations=tf.constant(obs)).items():
            assert f"Result for output key {key}:" in stdout
            shown = stdout.split(f"Result for output key {key}:")[1].split("Result for")[0]
            numbers = np.array(shown.replace("[", " ").replace("]", " ").split(), dtype=np.float64)
            np.testing.assert_allclose(numbers, value.numpy().ravel(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["gaussian_obs_norm", "cnn"])
def test_each_weight_is_stored_once(tmp_path, kind):
    """The export tracks the tf.Variables behind the Keras weights, not the Keras model as well (which
    would write every weight twice: a 6.6 MB Nature CNN became a 13 MB SavedModel)."""
    import tensorflow as tf

    policy, _, metadata = build(kind)
    path = export_policy(policy, metadata, str(tmp_path / kind))
    stored = [name for name, _ in tf.train.list_variables(os.path.join(path, "variables", "variables"))
              if name.endswith("VARIABLE_VALUE")]
    weights = len(policy.model.weights) + len(policy.trackables) - 1   # + log_std, obs_mean, obs_var
    assert len(stored) == weights + 2, stored   # + the sampler's rng state and metadata_json
