"""The four kinds of policy tfpg exports, built small with spread-out weights, for the export tests.

Each kind comes with a batch of observations on which its greedy actions vary, and the metadata
an export of it carries. Weights are drawn with std 1/sqrt(fan_in) (biases 0.1) instead of the
near-uniform initial output layer, so actions differ from state to state and float round-off in a
converted model cannot flip an argmax between nearly equal logits.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

FLAT = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
LANDER = gym.spaces.Box(-5.0, 5.0, (8,), np.float32)
FRAMES = gym.spaces.Box(0, 255, (4, 36, 36), np.uint8)   # the smallest stack the Nature CNN takes
KINDS = ("categorical", "gaussian_obs_norm", "dqn", "cnn")


def spread_weights(variables, seed: int) -> None:
    """Assign N(0, 1/fan_in) kernels and N(0, 0.1^2) biases / vectors."""
    rng = np.random.default_rng(seed)
    for v in variables:
        shape = tuple(v.shape)
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        scale = 1.0 / np.sqrt(fan_in) if len(shape) > 1 else 0.1
        v.assign(rng.normal(scale=scale, size=shape).astype(np.float32))


def build(kind: str):
    """(policy, observations, metadata) for one of KINDS."""
    from tfpg.algos.dqn.algorithm import QPolicy
    from tfpg.envs.make import space_to_dict
    from tfpg.models.policies import CategoricalPolicy, GaussianPolicy

    rng = np.random.default_rng(7)
    if kind == "categorical":
        policy = CategoricalPolicy(FLAT, gym.spaces.Discrete(3), hidden=(32,), seed=0)
        obs = rng.normal(size=(64, 4)).astype(np.float32) * 2
        algorithm, env_id = "reinforce", "CartPole-v1"
    elif kind == "gaussian_obs_norm":
        action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        policy = GaussianPolicy(LANDER, action_space, hidden=(32, 32), seed=0, normalize_obs=True,
                                activation="tanh", log_std_init=-0.5)
        policy.normalizer.update(rng.normal(loc=0.5, scale=3.0, size=(500, 8)))
        obs = rng.normal(loc=0.5, scale=3.0, size=(64, 8)).astype(np.float32)
        algorithm, env_id = "reinforce", "LunarLanderContinuous-v3"
    elif kind == "dqn":
        policy = QPolicy(FLAT, gym.spaces.Discrete(3), (32, 32))
        obs = rng.normal(size=(64, 4)).astype(np.float32) * 2
        algorithm, env_id = "dqn", "CartPole-v1"
    elif kind == "cnn":
        policy = CategoricalPolicy(FRAMES, gym.spaces.Discrete(6), hidden=(16,), seed=0)
        obs = rng.integers(0, 256, size=(16, 4, 36, 36), dtype=np.uint8)
        algorithm, env_id = "reinforce", "PongNoFrameskip-v4"
    else:
        raise ValueError(kind)
    spread_weights(policy.variables, seed=KINDS.index(kind))
    if kind == "gaussian_obs_norm":
        policy.log_std.assign([-0.5, 0.25])
    metadata = {"algorithm": algorithm, "policy": policy.kind, "env_id": env_id, "env_steps": 1,
                "observation_space": space_to_dict(policy.observation_space),
                "action_space": space_to_dict(policy.action_space)}
    return policy, obs, metadata


def expected_outputs(policy, obs) -> dict:
    """What each deterministic signature must return, computed by the in-process policy."""
    out = {"serving_default": {"action": policy.mode(obs).numpy()}}
    if hasattr(policy, "distribution_params"):
        out["distribution"] = {k: v.numpy() for k, v in policy.distribution_params(obs).items()}
    if hasattr(policy, "q_values"):
        out["q_values"] = {"q_values": policy.q_values(obs).numpy()}
    return out


def export_all(folder) -> dict:
    """{kind: (policy, obs, {"dir": SavedModel path, "obs": .npy path})}: every kind exported into
    `folder` (a pathlib.Path), its observation batch saved beside it."""
    from tfpg.export.saved_model import export_policy

    exported = {}
    for kind in KINDS:
        policy, obs, metadata = build(kind)
        path = export_policy(policy, metadata, str(folder / kind))
        np.save(folder / f"{kind}.npy", obs)
        exported[kind] = (policy, obs, {"dir": path, "obs": str(folder / f"{kind}.npy")})
    return exported
