"""A2C, PPO, TRPO/NPG: the shared core's advantages, TRPO's step on a real batch, exact resume and the export."""
import os
import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpg.algos.trpo.algorithm import TRPO
from tfpg.training.checks import prepare_paths
from tfpg.config.run import build_config
from tfpg.envs.make import env_spaces, make_train_envs
from tfpg.core.errors import ConfigError
from tfpg.maths.natural_gradient import flat_params
from tfpg.envs.stepping import VecStepper
from tfpg.training.trainer import train


def tiny(algo, env_id, **overrides):
    small = dict(num_envs=2, horizon=64, hidden=(16,), seed=0, stop_reward=None)
    if not overrides.get("shared_torso"):   # a shared torso has no separate critic to size (refused as inert)
        small["critic_hidden"] = (16,)
    return build_config(algo, env_id, None, {**small, **overrides})


def trpo_on(env_id, algo="trpo", **overrides):
    config = tiny(algo, env_id, **overrides)
    keras.utils.set_random_seed(config.seed)   # the initial weights, whatever ran before in this process
    stepper = VecStepper(make_train_envs(config), env_id, seed=config.seed)
    return TRPO(config, env_spaces(env_id), stepper), config


def test_advantages_bootstrap_truncations_from_the_final_observation_and_not_terminations():
    """With lambda = 0 each advantage is one TD error: r + gamma V(final obs) - V(s) at a time-limit
    truncation, r - V(s) at a termination, r + gamma V(s') inside an episode; pi_old is the policy after the
    statistics update (ratio 1 before any step)."""
    config = tiny("ppo", "CartPole-v1", gae_lambda=0.0, normalize=False, gamma=0.9, normalize_obs=True)
    envs = gym.make_vec("CartPole-v1", num_envs=3, vectorization_mode="sync", max_episode_steps=15)
    from tfpg.algos.ppo.algorithm import PPO

    algo = PPO(config, env_spaces("CartPole-v1"), VecStepper(envs, "CartPole-v1", seed=1))
    batch = algo.core.collect()
    rollout = algo.core.collector.rollout
    value = lambda obs: algo.core.value(tf.constant(obs, tf.float32)).numpy()   # noqa: E731
    v, v_next = value(rollout.observations.reshape(-1, 4)), value(rollout.next_observations().reshape(-1, 4))
    terminated, truncated = rollout.terminated.reshape(-1), rollout.truncated.reshape(-1)
    expected = rollout.rewards.reshape(-1) + 0.9 * np.where(terminated, 0.0, v_next) - v
    live = rollout.live.reshape(-1)
    np.testing.assert_allclose(batch.advantages, expected[live], rtol=1e-4, atol=1e-4)
    assert truncated[live].any() and terminated[live].any() and not live.all()
    np.testing.assert_allclose(batch.returns, batch.advantages + v[live], rtol=1e-5, atol=1e-4)
    log_probs = algo.policy.distribution(batch.observations).log_prob(batch.actions).numpy()
    np.testing.assert_allclose(log_probs, batch.log_probs, atol=1e-6)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_trpo_step_keeps_the_batch_kl_within_delta_and_improves_the_surrogate_or_leaves_theta(env_id):
    algo, config = trpo_on(env_id, max_kl=0.01)
    batch = algo.core.collect()
    data = (batch.observations, batch.actions, batch.advantages, batch.log_probs)
    theta_old = flat_params(algo.policy.variables).numpy()
    surrogate_old = float(algo.natural_step.surrogate_and_kl(*data, batch.params)[0])
    result, residual, finite = algo.natural_step(batch, config)
    surrogate, kl = (float(t) for t in algo.natural_step.surrogate_and_kl(*data, batch.params))
    assert finite and np.isfinite(residual)
    assert result.step_fraction > 0       # a fresh policy on its own batch: some fraction passes
    assert kl <= config.max_kl and surrogate > surrogate_old
    assert kl == pytest.approx(result.kl, rel=1e-4) and surrogate - surrogate_old == pytest.approx(result.improvement,
                                                                                                   rel=1e-3)
    # a direction of the wrong sign lowers the surrogate at every fraction: theta must stay where it was
    step_direction = algo.natural_step.direction
    algo.natural_step.direction = lambda o, p, g: tuple([-step_direction(o, p, g)[0], step_direction(o, p, g)[1]])
    theta_before = flat_params(algo.policy.variables).numpy()
    rejected, _, _ = algo.natural_step(algo.core.collect(), config)
    assert rejected.step_fraction == 0.0 and rejected.improvement == 0.0
    np.testing.assert_array_equal(flat_params(algo.policy.variables).numpy(), theta_before)
    assert not np.array_equal(theta_before, theta_old)


def test_npg_takes_the_whole_natural_step():
    algo, config = trpo_on("CartPole-v1", "npg", max_kl=0.005, cg_damping=1e-3)
    assert config.algo == "npg" and not config.line_search
    result, _, _ = algo.natural_step(algo.core.collect(), config)
    assert result.step_fraction == 1.0
    assert 0.2 * config.max_kl < result.kl < 5 * config.max_kl   # ~delta: the quadratic model, damped


def a2c_on(env_id, **overrides):
    from tfpg.algos.a2c.algorithm import A2C

    config = tiny("a2c", env_id, **overrides)
    keras.utils.set_random_seed(config.seed)
    return A2C(config, env_spaces(env_id), VecStepper(make_train_envs(config), env_id, seed=config.seed)), config


def test_a2c_kl_adaptive_lr_follows_each_updates_exact_kl_under_its_schedule():
    """Each update's exact KL(pi_old || pi) on its batch sets the next lr: / 1.5 above 2 x --target-kl, x 1.5 below
    half of it, and no update's lr is above --lr's linear schedule at the step it is taken."""
    algo, config = a2c_on("Pendulum-v1", lr=3e-3, linear_lr=True, total_steps=1_000, target_kl=1e-5)
    assert config.kl_adaptive_lr   # the fallback default
    seen = []
    for _ in range(6):
        lr_before = float(algo.optimizer.learning_rate.numpy())
        metrics = algo.iteration().metrics
        cap = algo.lr(algo.stepper.env_steps)   # the schedule where this update was taken
        assert metrics["lr"] == pytest.approx(min(lr_before, cap), rel=1e-6)
        lr_next, kl = float(algo.optimizer.learning_rate.numpy()), metrics["kl"]
        expected = metrics["lr"] / 1.5 if kl > 2e-5 else min(metrics["lr"] * 1.5, cap) if kl < 5e-6 else metrics["lr"]
        assert lr_next == pytest.approx(expected, rel=1e-5)
        seen.append(kl > 2e-5)
    assert any(seen)   # lr 3e-3 on 128 transitions: some update overshoots the target
    with pytest.raises(ConfigError, match=r"set --target-kl > 0 \(e.g. 0.0005\), or --kl-adaptive-lr false"):
        build_config("a2c", "Pendulum-v1", None, {"target_kl": 0.0})


@pytest.mark.parametrize("algo, flag, value", [("trpo", "lr", 0.01), ("a2c", "minibatch_size", 32),
                                               ("ppo", "critic_epochs", 3), ("ppo", "kl_adaptive_lr", True),
                                               ("trpo", "kl_adaptive_lr", True), ("ppo", "optimizer", "rmsprop"),
                                               ("trpo", "joint_update", True)])
def test_options_an_algorithm_does_not_use_are_refused(algo, flag, value):
    with pytest.raises(ConfigError, match=f"--{flag.replace('_', '-')} does not apply to --algo {algo}"):
        build_config(algo, "CartPole-v1", None, {flag: value})


@pytest.mark.parametrize("flags, message", [
    (["--kl-adaptive-lr", "false", "--target-kl", "0.01"],
     "--target-kl is the KL that --kl-adaptive-lr steers A2C's lr by: drop --target-kl, or set --kl-adaptive-lr true"),
    (["--shared-torso", "true", "--critic-lr", "0.01"],
     "--critic-lr shapes the separate critic, but with --shared-torso true the value head sits on the policy "
     "network, trained by one optimizer at --lr: drop --critic-lr, or set --shared-torso false"),
    (["--joint-update", "true", "--critic-lr", "0.01"],
     "--critic-lr is the critic's own optimizer's, but with --joint-update true one optimizer at --lr trains both "
     "networks: drop --critic-lr, or set --joint-update false"),
    (["--shared-torso", "true", "--joint-update", "false"],
     "--joint-update false needs two networks, but --shared-torso true trains one body with two heads by one "
     "optimizer: drop --joint-update, or set --shared-torso false"),
    (["--preset", "a2c-cartpole", "--shared-torso", "true", "--critic-activation", "tanh"],
     "--critic-activation shapes the separate critic"),
    (["--joint-update", "false", "--vf-coef", "0.25"],
     "--vf-coef weights the value loss in the joint loss of --joint-update true; the separate critic has its own "
     "optimizer (--critic-lr): drop --vf-coef, or set --joint-update true")])
def test_a2c_flags_the_other_settings_make_inert_are_refused_in_one_line(tmp_path, capsys, flags, message):
    from tfpg.cli.train import main

    status = main(["--algo", "a2c", *flags, "--logdir", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err, err
    assert not os.listdir(tmp_path)


def test_rmsprop_takes_pytorchs_step():
    """Stable-Baselines3's A2C optimizer, torch.optim.RMSprop(alpha=0.99, eps): v <- 0.99 v + 0.01 g^2,
    theta <- theta - lr g / (sqrt(v) + eps); Keras puts its epsilon under the root, so the steps agree to
    O(eps / sqrt(v))."""
    from tfpg.algos.actor_critic import built_optimizer

    lr, eps = 7e-4, 1e-5
    theta = tf.Variable([1.0, -2.0, 0.5])
    optimizer = built_optimizer(lr, eps, [theta], "rmsprop")
    v = np.zeros(3)
    for g in ([0.3, -0.05, 2.0], [0.1, 0.5, -1.0], [-0.2, 0.05, 0.4]):   # sqrt(v) >= 5e-3 = 500 eps
        before = theta.numpy().astype(np.float64)
        optimizer.apply_gradients([(tf.constant(g), theta)])
        v = 0.99 * v + 0.01 * np.square(g)
        np.testing.assert_allclose(theta.numpy() - before, -lr * np.array(g) / (np.sqrt(v) + eps), rtol=3e-3)


def test_a2c_joint_update_clips_policy_and_critic_gradients_as_one_vector():
    """--joint-update: g = grad over (theta, phi) of -mean(A log pi(a|s)) + c_v mean((V(s) - G)^2), scaled by
    min(1, clip / |g|) as one vector, then one RMSprop step. A large epsilon makes that step linear in g, so the
    clip shows: the policy's own gradient is under the clip, the joint one far over it."""
    from tfpg.algos.a2c.algorithm import A2C

    config = tiny("a2c", "CartPole-v1", joint_update=True, optimizer="rmsprop", adam_eps=100.0, lr=0.1,
                  entropy_beta=0.0, vf_coef=0.5, grad_clip=0.5, kl_adaptive_lr=False, target_kl=0.0)
    keras.utils.set_random_seed(0)
    algo = A2C(config, env_spaces("CartPole-v1"), VecStepper(make_train_envs(config), "CartPole-v1", seed=0))
    batch = algo.core.collect()
    returns = batch.returns + 50.0   # a critic far off: its gradient dominates the joint norm
    advantages = 0.1 * batch.advantages   # a policy gradient under the clip on its own
    obs, actions = tf.constant(batch.observations), tf.constant(batch.actions)
    policy_vars, critic_vars = list(algo.policy.variables), list(algo.core.critic_variables)
    with tf.GradientTape(persistent=True) as tape:
        loss_policy = -tf.reduce_mean(advantages * algo.policy.distribution(obs).log_prob(actions))
        value_loss = tf.reduce_mean(tf.square(tf.squeeze(algo.core.value(obs)) - returns))
        joint = loss_policy + 0.5 * value_loss
    grads = [g.numpy() for g in tape.gradient(joint, policy_vars + critic_vars)]
    policy_norm = np.sqrt(sum(np.sum(g ** 2) for g in tape.gradient(loss_policy, policy_vars)))
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    assert policy_norm < 0.5 < norm / 10
    clipped = [g * 0.5 / norm for g in grads]
    before = [v.numpy() for v in policy_vars + critic_vars]
    algo.update(batch.observations, batch.actions, advantages, returns)
    for v, start, g in zip(policy_vars + critic_vars, before, clipped):
        step = 0.1 * g / np.sqrt(0.01 * g ** 2 + 100.0 ** 2)
        np.testing.assert_allclose(v.numpy(), start - step, rtol=1e-4, atol=1e-7)
    assert algo.critic_optimizer.iterations.numpy() == 0


def test_a2c_settings_a_preset_or_default_holds_are_not_taken_as_given():
    """The preset sets --critic-lr and --target-kl 0, the fallback --target-kl 5e-4: none of them was a flag."""
    assert build_config("a2c", None, "a2c-cartpole", {"shared_torso": True}).shared_torso
    config = build_config("a2c", "Pendulum-v1", None, {"kl_adaptive_lr": False, "target_kl": 0.0})
    assert not config.kl_adaptive_lr and build_config("a2c", "Pendulum-v1", None, {"kl_adaptive_lr": False})
    assert build_config("a2c", "Pendulum-v1", None, {"shared_torso": True, "vf_coef": 0.25}).vf_coef == 0.25


# Each covers other options: a shared torso with RMSprop; Gaussian + obs statistics + KL stop + value clip; TRPO. (Not the
# linear schedules: they run over --total-steps, which the shorter first part of a resumed run changes.)
RESUMED = {
    "a2c": ("CartPole-v1", dict(shared_torso=True, horizon=16, kl_adaptive_lr=True, target_kl=1e-4, optimizer="rmsprop")),
    "ppo": ("Pendulum-v1", dict(target_kl=0.01, clip_range_vf=0.5, minibatch_size=32, epochs=3, normalize_obs=True)),
    "trpo": ("CartPole-v1", dict(critic_epochs=2)),
}


@pytest.mark.parametrize("algo", sorted(RESUMED))
def test_resume_continues_exactly_and_the_export_loads(tmp_path, algo):
    env_id, extra = RESUMED[algo]

    def fit(name, total_steps, resume=False):
        config = tiny(algo, env_id, total_steps=total_steps, checkpoint_every=1000, progress=False,
                      logdir=str(tmp_path / "runs"), export_dir=str(tmp_path / "models"), run_name=name, **extra)
        if resume:
            return train(config, str(tmp_path / "runs" / name), str(tmp_path / "models" / name), resume=True)
        return train(config, *prepare_paths(config))

    full = fit("full", 2_500)
    part = fit("part", 1_100)
    resumed = fit("part", 2_500, resume=True)
    assert part.env_steps < full.env_steps and resumed.env_steps == full.env_steps
    assert resumed.episodes == full.episodes and resumed.reward_100 == pytest.approx(full.reward_100, abs=1e-9)
    obs = np.random.default_rng(0).normal(size=(20, env_spaces(env_id).observation_space.shape[0])).astype(np.float32)
    models = [tf.saved_model.load(str(tmp_path / "models" / n)) for n in ("full", "part")]
    outputs = [m.signatures["distribution"](observations=tf.constant(obs)) for m in models]
    for key in outputs[0]:
        np.testing.assert_allclose(outputs[1][key].numpy(), outputs[0][key].numpy(), rtol=1e-5, atol=1e-6)
    assert models[0].signatures["serving_default"](observations=tf.constant(obs))["action"].shape[0] == 20


def test_shipped_ppo_lander_lands():
    """saved_models/lunarlander-ppo: the PPO preset's run on LunarLanderContinuous-v3 (1M steps, seed 0)."""
    import os

    from tfpg.cli.evaluate import evaluate

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models", "lunarlander-ppo")
    returns = evaluate(path, episodes=20, seed=100)   # greedy signature, fixed seeds 100..119
    assert returns.mean() >= 250, returns
