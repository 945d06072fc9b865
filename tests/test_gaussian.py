"""The diagonal-Gaussian policy: closed-form log-prob and entropy, a trained log-std, bounded env
actions, obs normalisation (in process and exported), policy/space mismatches, sync = async."""
import os

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpg.models.policies import policy_kind, restore_variables, snapshot_variables
from tfpg.envs.stepping import VecStepper
from tfpg.algos.reinforce.algorithm import make_update
from conftest import run_tensorflow_only
from tfpg.core.errors import ConfigError
from tfpg.export.saved_model import export_policy
from tfpg.models.normalization import ObservationNormalizer
from tfpg.models.policies import CategoricalPolicy, GaussianPolicy

OBS = gym.spaces.Box(-np.inf, np.inf, (8,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def gaussian(seed=0, **kw):
    policy = GaussianPolicy(OBS, ACT, hidden=(16, 16), seed=seed, **kw)
    policy.log_std.assign([0.3, -0.7])
    return policy


def test_log_prob_and_entropy_equal_the_closed_forms():
    policy = gaussian()
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(20, 8)).astype(np.float32)
    actions = rng.normal(size=(20, 2)).astype(np.float32) * 2
    mu = policy.mean(obs).numpy().astype(np.float64)
    log_std = np.array([0.3, -0.7])
    sigma = np.exp(log_std)
    closed = np.sum(-(actions - mu) ** 2 / (2 * sigma ** 2) - log_std - 0.5 * np.log(2 * np.pi), axis=1)
    np.testing.assert_allclose(policy.distribution(obs).log_prob(actions).numpy(), closed, rtol=1e-5, atol=1e-5)
    entropy = np.sum(0.5 * np.log(2 * np.pi * np.e) + log_std)
    np.testing.assert_allclose(policy.distribution(obs).entropy().numpy(), np.full(20, entropy), rtol=1e-6)
    params = policy.distribution_params(obs)
    assert set(params) == {"mean", "log_std"} and params["log_std"].shape == (20, 2)


def test_log_std_gets_a_gradient_and_changes_after_an_update():
    policy = gaussian()
    optimizer = keras.optimizers.Adam(0.01)
    optimizer.build(policy.variables)
    update = make_update(policy, optimizer, entropy_beta=0.0, grad_clip=0.0)
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(64, 8)).astype(np.float32)
    actions = policy.act_numpy(obs)
    # Reward actions far from the mean: the gradient must widen sigma.
    adv = np.linalg.norm(actions - policy.mean(obs).numpy(), axis=1).astype(np.float32)
    adv = (adv - adv.mean()) / adv.std()
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(adv * policy.distribution(obs).log_prob(actions))
    grad = tape.gradient(loss, policy.log_std)
    assert np.all(np.abs(grad.numpy()) > 1e-4)
    before = policy.log_std.numpy().copy()
    metrics = update(obs, actions, adv, policy.distribution(obs).log_prob(actions))
    after = policy.log_std.numpy()
    assert np.all(after > before)                       # sigma widened, per dimension
    assert float(metrics["kl"]) > 0 and np.isfinite(float(metrics["kl"]))


def test_log_std_lr_moves_only_the_log_std_faster():
    """--log-std-lr: the same first step moves the log-std 10x as far, and the mean network exactly as far."""
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(64, 8)).astype(np.float32)
    results = []
    for log_std_lr in (None, 0.01):
        keras.utils.set_random_seed(4)
        policy = gaussian(seed=4)
        optimizer = keras.optimizers.Adam(0.001)
        log_std_optimizer = None
        if log_std_lr:
            log_std_optimizer = keras.optimizers.Adam(log_std_lr)
            log_std_optimizer.build([policy.log_std])
            optimizer.build(policy.model.trainable_variables)
        else:
            optimizer.build(policy.variables)
        update = make_update(policy, optimizer, 0.0, 0.0, log_std_optimizer=log_std_optimizer)
        actions = np.asarray(policy.distribution(obs).sample(seed=[1, 2]))
        adv = np.linalg.norm(actions - policy.mean(obs).numpy(), axis=1).astype(np.float32)
        adv = (adv - adv.mean()) / adv.std()
        old = policy.distribution(obs).log_prob(actions).numpy()
        update(obs, actions, adv, old)
        results.append((policy.log_std.numpy(), [w.numpy() for w in policy.model.trainable_variables]))
    (std_a, weights_a), (std_b, weights_b) = results
    init = np.array([0.3, -0.7], np.float32)
    moved_a, moved_b = std_a - init, std_b - init
    assert np.all(np.abs(moved_a) > 5e-4)
    np.testing.assert_allclose(moved_b, 10 * moved_a, rtol=1e-3)    # Adam's first step: lr * sign(g)
    for wa, wb in zip(weights_a, weights_b):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)


def test_std_ceiling_falls_log_linearly_and_caps_only_what_is_above_it():
    """--std-ceiling: log sigma_max(t) interpolates log_std_init -> log(std_ceiling) over N env steps, then stays;
    the projection lowers only the dimensions above it."""
    from tfpg.algos.reinforce.algorithm import std_ceiling_log
    from tfpg.algos.registry import build_config

    config = build_config("reinforce", "LunarLanderContinuous-v3", None,
                          {"std_ceiling": 0.1, "std_ceiling_steps": 1000, "log_std_init": -0.5})
    for t, expected in ((0, -0.5), (250, -0.5 + 0.25 * (np.log(0.1) + 0.5)), (1000, np.log(0.1)), (10**6, np.log(0.1))):
        assert std_ceiling_log(config, t) == pytest.approx(expected, abs=1e-12)
    policy = gaussian()                                  # log_std [0.3, -0.7]
    policy.cap_log_std(0.0)
    np.testing.assert_allclose(policy.log_std.numpy(), [0.0, -0.7], rtol=1e-7)
    with pytest.raises(ConfigError, match="--std-ceiling 2.0 must be below the initial sigma"):
        build_config("reinforce", "LunarLanderContinuous-v3", None, {"std_ceiling": 2.0})
    with pytest.raises(ConfigError, match="--std-ceiling-steps must be a positive integer"):
        build_config("reinforce", "LunarLanderContinuous-v3", None, {"std_ceiling": 0.5, "std_ceiling_steps": 0})


def test_training_with_a_std_ceiling_exports_sigma_under_it(tmp_path):
    from conftest import cli_here

    proc = cli_here(["--env", "LunarLanderContinuous-v3", "--total-steps", "4000", "--steps-per-update", "1000",
                     "--std-ceiling", "0.5", "--std-ceiling-steps", "2000", "--eval-every", "0", "--no-progress",
                     "--run-name", "cap", "--logdir", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "models")],
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.save(tmp_path / "obs.npy", np.zeros((3, 8), np.float32))
    out = run_tensorflow_only(LOADER, tmp_path / "models" / "cap", tmp_path / "obs.npy", cwd=tmp_path)
    assert np.max(out["log_std"]) <= np.log(0.5) + 1e-6   # the ceiling reached its end value at 2,000 steps


def test_kl_metric_is_the_gaussian_closed_form():
    policy = gaussian(seed=2)
    optimizer = keras.optimizers.Adam(0.05)
    optimizer.build(policy.variables)
    update = make_update(policy, optimizer, entropy_beta=0.01, grad_clip=0.0)
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(32, 8)).astype(np.float32)
    actions = policy.act_numpy(obs)
    adv = rng.normal(size=32).astype(np.float32)
    m0, s0 = policy.mean(obs).numpy(), np.exp(policy.log_std.numpy())
    metrics = update(obs, actions, adv, policy.distribution(obs).log_prob(actions))
    m1, s1 = policy.mean(obs).numpy(), np.exp(policy.log_std.numpy())
    kl = np.sum(np.log(s1 / s0) + (s0 ** 2 + (m0 - m1) ** 2) / (2 * s1 ** 2) - 0.5, axis=1).mean()
    np.testing.assert_allclose(float(metrics["kl"]), kl, rtol=1e-3)


def test_env_actions_respect_the_bounds_but_stored_actions_are_unclipped():
    from tfpg.envs.make import make_vec_env
    from tfpg.experience.collectors import EpisodeCollector

    envs = make_vec_env("LunarLanderContinuous-v3", num_envs=2, seed=0, vector_mode="sync")
    policy = GaussianPolicy(envs.single_observation_space, envs.single_action_space, hidden=(8,), seed=0)
    policy.log_std.assign([1.0, 1.0])                   # sigma = e: most samples leave [-1, 1]
    sent = []

    def to_env(actions):
        sent.append(policy.env_action(actions))
        return sent[-1]

    batch = EpisodeCollector(VecStepper(envs), policy.act_numpy, to_env=to_env).collect(min_episodes=2)
    envs.close()
    sent = np.concatenate(sent)
    assert sent.min() >= -1.0 and sent.max() <= 1.0
    assert np.abs(batch.actions).max() > 1.0            # the scored sample is the unclipped one
    greedy = policy.greedy_numpy(np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32) * 100)
    assert greedy.min() >= -1.0 and greedy.max() <= 1.0


def test_policy_and_action_space_mismatch_fails_with_one_clear_line():
    with pytest.raises(ConfigError, match="gaussian policy needs a Box action space") as e:
        GaussianPolicy(OBS, gym.spaces.Discrete(3))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="categorical policy needs a Discrete action space"):
        CategoricalPolicy(OBS, ACT)
    assert policy_kind("auto", ACT) == "gaussian" and policy_kind("auto", gym.spaces.Discrete(2)) == "categorical"
    with pytest.raises(ConfigError, match="--policy gaussian needs a Box action space"):
        policy_kind("gaussian", gym.spaces.Discrete(2))


def test_normalizer_statistics_equal_numpy_over_all_batches():
    rng = np.random.default_rng(3)
    norm = ObservationNormalizer(3)
    batches = [rng.normal(loc=[5, -2, 0], scale=[10, 0.1, 1], size=(n, 3)) for n in (1, 7, 500, 33)]
    for b in batches:
        norm.update(b)
    every = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), every.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.var.numpy(), every.var(0), rtol=1e-5)
    assert norm.count == len(every)
    x = np.array([[5.0, 100.0, 0.0]], np.float32)        # far outside on dimension 1: clipped to +10
    out = norm(x).numpy()
    assert out[0, 1] == 10.0 and abs(out[0, 0]) < 0.1


LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
obs = tf.constant(np.load(sys.argv[2]))
d = m.signatures["distribution"](observations=obs)
print(json.dumps({"greedy": m.signatures["serving_default"](observations=obs)["action"].numpy().tolist(),
                  "sample": m.signatures["sample"](observations=obs)["action"].numpy().tolist(),
                  "mean": d["mean"].numpy().tolist(), "log_std": d["log_std"].numpy().tolist(),
                  "tfpg_imported": any(k == "tfpg" or k.startswith("tfpg.") for k in sys.modules)}))
"""


def test_exported_gaussian_with_normalisation_acts_on_raw_observations(tmp_path):
    policy = gaussian(normalize_obs=True)
    rng = np.random.default_rng(4)
    for v in policy.model.trainable_variables:
        v.assign(rng.normal(size=v.shape).astype(np.float32))
    policy.normalizer.update(rng.normal(loc=50.0, scale=20.0, size=(1000, 8)))
    raw = rng.normal(loc=50.0, scale=20.0, size=(64, 8)).astype(np.float32)
    path = export_policy(policy, {"env_id": "x"}, str(tmp_path / "m"))
    np.save(tmp_path / "obs.npy", raw)
    out = run_tensorflow_only(LOADER, path, tmp_path / "obs.npy", cwd=tmp_path)
    assert not out["tfpg_imported"]
    expected = policy.mode(raw).numpy()
    np.testing.assert_allclose(out["greedy"], expected, rtol=1e-5, atol=1e-6)
    assert 0 < np.mean(np.abs(expected) < 1.0) < 1       # some actions clipped, some not: not vacuous
    np.testing.assert_allclose(out["mean"], policy.mean(raw).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["log_std"], np.broadcast_to([0.3, -0.7], (64, 2)), rtol=1e-6)
    sample = np.array(out["sample"])
    assert sample.shape == (64, 2) and sample.min() >= -1 and sample.max() <= 1
    # Without the statistics the raw observations would give other actions.
    assert not np.allclose(policy.model(raw).numpy(), policy.mean(raw).numpy())


def test_policy_state_round_trips_every_variable_the_graph_reads():
    policy = gaussian(normalize_obs=True)
    policy.normalizer.update(np.random.default_rng(5).normal(3.0, 2.0, size=(100, 8)))
    obs = np.random.default_rng(6).normal(size=(10, 8)).astype(np.float32)
    state, before = snapshot_variables(policy), policy.distribution_params(obs)
    for v in policy.variables:
        v.assign(v + 1.0)
    policy.normalizer.update(np.full((100, 8), 50.0))
    restore_variables(policy, state)
    after = policy.distribution_params(obs)
    for key in before:
        np.testing.assert_array_equal(before[key].numpy(), after[key].numpy())


def test_async_and_sync_collection_give_identical_batches():
    from tfpg.envs.make import make_vec_env
    from tfpg.experience.collectors import EpisodeCollector

    batches = []
    for mode in ("sync", "async"):
        envs = make_vec_env("LunarLanderContinuous-v3", num_envs=2, seed=7, vector_mode=mode)
        keras.utils.set_random_seed(7)                  # what train() does: same initial weights
        policy = GaussianPolicy(envs.single_observation_space, envs.single_action_space, hidden=(8,), seed=7)
        batches.append(EpisodeCollector(VecStepper(envs), policy.act_numpy, to_env=policy.env_action).collect(min_episodes=3))
        envs.close()
    sync, async_ = batches
    for field in ("observations", "actions", "rewards", "lengths", "terminated", "final_observations"):
        np.testing.assert_array_equal(getattr(sync, field), getattr(async_, field), err_msg=field)


SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models", "lunarlander-pg")


def test_shipped_lander_lands():
    from tfpg.cli.evaluate import evaluate

    returns = evaluate(SHIPPED, episodes=20, seed=100)   # greedy signature, fixed seeds 100..119
    assert returns.mean() >= 200, returns


def test_evaluate_records_an_mp4_of_the_lander(tmp_path):
    from tfpg.cli.evaluate import evaluate

    evaluate(SHIPPED, episodes=1, seed=100, video_dir=str(tmp_path / "videos"))
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 10_000
