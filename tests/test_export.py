"""SavedModel export: loads without tfpg, same greedy actions, metadata round-trips, atomic."""
import os

import gymnasium as gym
import numpy as np
import pytest

from conftest import run_tensorflow_only
from tfpg.core.errors import ConfigError
from tfpg.export.saved_model import export_policy, read_metadata
from tfpg.models.policies import CategoricalPolicy

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)

LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
obs = np.load(sys.argv[2])
out = {
    "greedy": m.signatures["serving_default"](observations=tf.constant(obs))["action"].numpy().tolist(),
    "greedy_attr": m.greedy(obs)["action"].numpy().tolist(),
    "sample": m.signatures["sample"](observations=tf.constant(obs))["action"].numpy().tolist(),
    "logits": m.signatures["distribution"](observations=tf.constant(obs))["logits"].numpy().tolist(),
    "metadata": json.loads(m.metadata_json.numpy().decode()),
    "tfpg_imported": any(k.split(".")[0] in ("tfpg", "tensorflow_probability") for k in sys.modules),
    "tfp_imported": "tensorflow_probability" in sys.modules,
}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    policy = CategoricalPolicy(OBS_SPACE, gym.spaces.Discrete(2), hidden=(32,), seed=0)
    # Push the weights away from the near-uniform init so greedy actions vary with the state.
    for v in policy.variables:
        v.assign(np.random.default_rng(1).normal(size=v.shape).astype(np.float32))
    metadata = {"algorithm": "reinforce", "env_id": "CartPole-v1", "env_steps": 123, "reward_100": 42.5,
                "observation_space": {"type": "Box", "shape": [4]}, "action_space": {"type": "Discrete", "n": 2}}
    path = export_policy(policy, metadata, str(tmp / "model"))
    return policy, metadata, path, tmp


def test_tensorflow_only_process_gets_same_greedy_actions(exported):
    policy, metadata, path, tmp = exported
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    np.save(tmp / "obs.npy", obs)
    out = run_tensorflow_only(LOADER, path, tmp / "obs.npy", cwd=tmp)
    assert not out["tfpg_imported"] and not out["tfp_imported"]
    expected = policy.mode(obs).numpy().tolist()
    assert out["greedy"] == expected and out["greedy_attr"] == expected
    assert len(set(expected)) == 2  # the check is not vacuous
    np.testing.assert_allclose(out["logits"], policy.logits(obs).numpy(), rtol=1e-5, atol=1e-5)
    # sampled actions follow softmax(logits): frequencies over 4 states x 1000 draws within 5 sigma
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    rows = np.repeat(obs[:4], 1000, axis=0)
    draws = loaded.sample(rows)["action"].numpy().reshape(4, 1000)
    p1 = tf.nn.softmax(policy.logits(obs[:4])).numpy()[:, 1]
    assert np.all(np.abs(draws.mean(1) - p1) < 5 * np.sqrt(p1 * (1 - p1) / 1000) + 1e-3), (draws.mean(1), p1)
    for key, value in metadata.items():
        assert out["metadata"][key] == value
    assert out["metadata"]["format_version"] == 1


def test_metadata_file_round_trips(exported):
    _, metadata, path, _ = exported
    read = read_metadata(path)
    assert {k: read[k] for k in metadata} == metadata


def test_export_refuses_to_overwrite_and_replaces_atomically(exported):
    policy, metadata, path, tmp = exported
    with pytest.raises(ConfigError, match="already exists"):
        export_policy(policy, metadata, path)
    export_policy(policy, {**metadata, "env_steps": 999}, path, overwrite=True)
    assert read_metadata(path)["env_steps"] == 999
    # No temporary folders are left beside the export.
    assert sorted(os.listdir(tmp)) == ["model", "obs.npy"] or sorted(os.listdir(tmp)) == ["model"]


def test_read_metadata_rejects_non_tfpg_dirs(tmp_path):
    with pytest.raises(ConfigError, match="no model directory"):
        read_metadata(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a tfpg SavedModel"):
        read_metadata(str(tmp_path / "empty"))


def test_shipped_cartpole_policy_balances():
    from tfpg.cli.evaluate import evaluate

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    returns = evaluate(os.path.join(root, "saved_models", "cartpole-reinforce"), episodes=10, seed=100)
    assert returns.mean() >= 475, returns


DQN_LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
obs = np.load(sys.argv[2])
out = {
    "signatures": sorted(m.signatures.keys()),
    "greedy": m.signatures["serving_default"](observations=tf.constant(obs))["action"].numpy().tolist(),
    "greedy_attr": m.greedy(obs)["action"].numpy().tolist(),
    "q_values": m.signatures["q_values"](observations=tf.constant(obs))["q_values"].numpy().tolist(),
    "q_values_attr": m.q_values(obs)["q_values"].numpy().tolist(),
    "metadata": json.loads(m.metadata_json.numpy().decode()),
    "tfpg_imported": any(k == "tfpg" or k.startswith("tfpg.") for k in sys.modules),
    "tfp_imported": "tensorflow_probability" in sys.modules,
}
print(json.dumps(out))
"""


def test_dqn_export_loads_with_tensorflow_only(tmp_path):
    from tfpg.algos.dqn.algorithm import QPolicy

    policy = QPolicy(OBS_SPACE, gym.spaces.Discrete(3), (32, 32))
    metadata = {"algorithm": "dqn", "policy": policy.kind, "env_id": "CartPole-v1", "env_steps": 7,
                "observation_space": {"type": "Box", "shape": [4]}, "action_space": {"type": "Discrete", "n": 3}}
    path = export_policy(policy, metadata, str(tmp_path / "dqn"))
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32) * 3
    np.save(tmp_path / "obs.npy", obs)
    out = run_tensorflow_only(DQN_LOADER, path, tmp_path / "obs.npy", cwd=tmp_path)
    assert not out["tfpg_imported"] and not out["tfp_imported"]
    assert out["signatures"] == ["q_values", "serving_default"]   # no sampling policy for DQN
    expected = policy.greedy_numpy(obs).tolist()
    assert out["greedy"] == expected and out["greedy_attr"] == expected
    assert len(set(expected)) > 1
    q = policy.q_values(obs).numpy()
    np.testing.assert_allclose(out["q_values"], q, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["q_values_attr"], q, rtol=1e-5, atol=1e-5)
    assert out["greedy"] == np.argmax(out["q_values"], axis=1).tolist()
    assert out["metadata"]["algorithm"] == "dqn" and out["metadata"]["format_version"] == 1
