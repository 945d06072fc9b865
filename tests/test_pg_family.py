"""The policy-gradient family: baselines, importance sampling, KL, n-step collection, presets."""
import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.algos.reinforce.algorithm import make_update, policy_gradient_loss
from tfpg.models.baselines import CriticBaseline, LinearBaseline, MeanBaseline, MovingBaseline, explained_variance
from tfpg.models.policies import CategoricalPolicy

tfd = tfp.distributions
FLAT4 = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def contextual_bandit_policy(seed=0):
    """Two states (one-hot observations), two arms; logits = W s (no hidden layer, no bias)."""
    policy = CategoricalPolicy(gym.spaces.Box(0.0, 1.0, (2,), np.float32), gym.spaces.Discrete(2), hidden=(), seed=seed)
    kernel, bias = policy.model.get_layer("out").weights
    kernel.assign([[0.5, -0.5], [-0.3, 0.4]])
    bias.assign([0.0, 0.0])
    return policy, kernel


def per_batch_gradients(policy, kernel, obs, actions, advantages, batch):
    """One gradient estimate per batch of `batch` samples (ascent direction, w.r.t. W)."""
    @tf.function
    def grad(o, a, adv):
        with tf.GradientTape() as tape:
            _, losses = policy_gradient_loss(policy, o, a, adv, 0.0)
        return -tape.gradient(losses["loss_policy"], kernel)

    n = len(actions) // batch * batch
    return np.array([grad(obs[s:s + batch], actions[s:s + batch], advantages[s:s + batch]).numpy().ravel()
                     for s in range(0, n, batch)])


def test_baselines_keep_the_expectation_and_cut_the_variance():
    policy, kernel = contextual_bandit_policy()
    rng = np.random.default_rng(0)
    n, batch = 40_000, 20
    states = rng.integers(0, 2, n)
    obs = np.eye(2, dtype=np.float32)[states]
    probs = tf.nn.softmax(policy.logits(obs)).numpy()
    actions = (rng.random(n) < probs[:, 1]).astype(np.int32)
    mean_reward = np.array([[1.0, 3.0], [10.0, 11.0]])          # state 1 pays much more: a state baseline helps
    rewards = (mean_reward[states, actions] + rng.normal(0, 0.5, n)).astype(np.float32)
    v_state = (probs * mean_reward[states]).sum(1)                # b(s) = E[r | s] under pi
    estimates = {
        "none": per_batch_gradients(policy, kernel, obs, actions, rewards, batch),
        "constant": per_batch_gradients(policy, kernel, obs, actions, rewards - rewards.mean(), batch),
        "state": per_batch_gradients(policy, kernel, obs, actions, (rewards - v_state).astype(np.float32), batch),
    }
    # Exact gradient: sum_s p(s) sum_a pi(a|s) r(s,a) grad log pi(a|s), grad log pi(a|s) wrt W = s (e_a - pi)^T.
    exact = np.zeros((2, 2))
    for s in range(2):
        pi = probs[states == s][0]
        for a in range(2):
            exact += 0.5 * pi[a] * mean_reward[s, a] * np.outer(np.eye(2)[s], np.eye(2)[a] - pi)
    for name, g in estimates.items():
        stderr = g.std(0) / np.sqrt(len(g))
        # Same expectation: each mean within 4 standard errors (+ a small slack) of the exact gradient.
        assert np.all(np.abs(g.mean(0) - exact.ravel()) <= 4 * stderr + 0.02), (name, g.mean(0), exact.ravel())
    variance = {name: float(np.sum(g.var(0))) for name, g in estimates.items()}
    assert variance["state"] < variance["constant"] < variance["none"], variance
    assert variance["state"] < 0.1 * variance["none"]


def test_importance_weighted_gradient_at_first_epoch_equals_on_policy_gradient():
    policy = CategoricalPolicy(gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(3), hidden=(8,), seed=2)
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(32, 3)).astype(np.float32)
    actions = rng.integers(0, 3, 32).astype(np.int32)
    advantages = rng.normal(size=32).astype(np.float32)
    old_log_probs = policy.distribution(obs).log_prob(actions)
    grads = []
    for old in (None, old_log_probs):
        with tf.GradientTape() as tape:
            _, losses = policy_gradient_loss(policy, obs, actions, advantages, 0.0, old, is_clip=0.0)
        grads.append(tape.gradient(losses["loss_total"], policy.variables))
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_importance_weights_after_a_step_and_truncation():
    from tfpg.algos.reinforce.algorithm import importance_weights

    log_probs = tf.math.log(tf.constant([0.5, 0.2, 0.9]))
    old = tf.math.log(tf.constant([0.25, 0.4, 0.3]))
    np.testing.assert_allclose(importance_weights(log_probs, old).numpy(), [2.0, 0.5, 3.0], rtol=1e-5)
    np.testing.assert_allclose(importance_weights(log_probs, old, is_clip=1.5).numpy(), [1.5, 0.5, 1.5], rtol=1e-5)


def test_kl_metric_equals_tfp_kl_of_the_distributions_before_and_after():
    import keras

    policy = CategoricalPolicy(gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(3), hidden=(16,), seed=3)
    optimizer = keras.optimizers.Adam(0.05)
    optimizer.build(policy.variables)
    update = make_update(policy, optimizer, entropy_beta=0.01, grad_clip=0.0)
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(64, 4)).astype(np.float32)
    actions = rng.integers(0, 3, 64).astype(np.int32)
    adv = rng.normal(size=64).astype(np.float32)
    logits_before = policy.logits(obs).numpy()
    metrics = update(obs, actions, adv, policy.distribution(obs).log_prob(actions))
    logits_after = policy.logits(obs).numpy()
    kl_tfp = tfd.kl_divergence(tfd.Categorical(logits=logits_before), tfd.Categorical(logits=logits_after))
    p, q = tf.nn.softmax(logits_before).numpy(), tf.nn.softmax(logits_after).numpy()
    kl_closed = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))
    assert float(metrics["kl"]) > 0
    np.testing.assert_allclose(float(metrics["kl"]), float(tf.reduce_mean(kl_tfp)), rtol=1e-4)
    np.testing.assert_allclose(float(metrics["kl"]), kl_closed, rtol=1e-3)


def test_linear_baseline_equals_least_squares_and_persists_as_arrays():
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(200, 4))
    returns = obs @ np.array([1.0, -2.0, 0.5, 0.0]) + 3.0 + rng.normal(0, 0.1, 200)
    b = LinearBaseline(4)
    np.testing.assert_array_equal(b.values(obs), 0.0)  # nothing fitted yet: no dummy row
    b.fit(obs, returns)
    design = np.hstack([obs, np.ones((len(obs), 1))])           # V(s) = w.s + c by ordinary least squares
    coef, *_ = np.linalg.lstsq(design, returns, rcond=None)
    np.testing.assert_allclose(b.values(obs), design @ coef, rtol=1e-5, atol=1e-5)
    state = b.state()
    assert all(isinstance(v, (np.ndarray, np.floating)) for v in state.values())
    c = LinearBaseline(4)
    c.load(state)
    np.testing.assert_allclose(c.values(obs), b.values(obs))


def test_critic_value_loss_falls_on_a_fixed_regression_batch():
    keras.utils.set_random_seed(4)   # the critics' initial weights
    rng = np.random.default_rng(4)
    obs = rng.normal(size=(256, 4)).astype(np.float32)
    returns = (np.sin(obs[:, 0]) * 5 + obs[:, 1] ** 2).astype(np.float32)
    critic = CriticBaseline(FLAT4, (32, 32), lr=3e-3)
    losses = [critic.fit(obs, returns)["value_loss"] for _ in range(300)]
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])
    assert explained_variance(critic.values(obs), returns) > 0.8



def test_critic_on_frames_is_a_cnn_that_fits_uint8_stacks():
    """REINFORCE's default baseline on pixels (CarRacing-v3's preprocessed frames): a Nature CNN that takes the
    uint8 (C, H, W) stacks the policy takes, and learns a value that depends on where a bright square is."""
    frames = gym.spaces.Box(0, 255, (2, 36, 36), np.uint8)
    keras.utils.set_random_seed(6)   # the critics' initial weights
    rng = np.random.default_rng(6)
    obs = np.zeros((128, 2, 36, 36), np.uint8)
    column = rng.integers(0, 28, size=128)
    for i, c in enumerate(column):
        obs[i, :, 10:18, c:c + 8] = 255
    returns = (column / 27.0 * 10.0 - 5.0).astype(np.float32)
    critic = CriticBaseline(frames, (32,), lr=1e-3, normalize_targets=True)
    assert critic.model.get_layer("conv_0") is not None and critic.model.inputs[0].dtype == "uint8"
    for _ in range(150):
        critic.fit(obs, returns)
    assert explained_variance(critic.values(obs), returns) > 0.8


def test_critic_with_normalised_targets_fits_values_far_from_zero_where_the_plain_one_cannot_yet():
    """Pendulum-like returns (about -800): after the same 100 Adam steps the critic on standardised
    targets explains them and the plain critic does not; V = mu + sigma * net(s) survives a checkpoint."""
    keras.utils.set_random_seed(5)   # the critics' initial weights
    rng = np.random.default_rng(5)
    obs = rng.normal(size=(256, 4)).astype(np.float32)
    returns = (-800.0 + 100.0 * np.sin(obs[:, 0]) + 50.0 * obs[:, 1]).astype(np.float32)
    plain = CriticBaseline(FLAT4, (32, 32), lr=3e-3)
    scaled = CriticBaseline(FLAT4, (32, 32), lr=3e-3, normalize_targets=True)
    for _ in range(100):
        plain.fit(obs, returns)
        scaled.fit(obs, returns)
    assert explained_variance(scaled.values(obs), returns) > 0.8
    assert explained_variance(plain.values(obs), returns) < 0.2
    state = scaled.state()   # the same batch 100 times: the running moments are the batch's
    np.testing.assert_allclose(state["critic_targets/mean"], [returns.astype(np.float64).mean()], rtol=1e-6)
    np.testing.assert_allclose(state["critic_targets/var"], [returns.astype(np.float64).var()], rtol=1e-4)
    restored = CriticBaseline(FLAT4, (32, 32), lr=3e-3, normalize_targets=True)
    restored.model.set_weights(scaled.model.get_weights())
    restored.load(state)
    np.testing.assert_allclose(restored.values(obs), scaled.values(obs), rtol=1e-6)


def test_mean_and_moving_baselines():
    m = MeanBaseline()
    m.fit(None, np.array([1.0, 2.0, 3.0]))
    m.fit(None, np.array([6.0]))
    assert m.values(np.zeros((2, 1)))[0] == pytest.approx(3.0)
    mv = MovingBaseline(window=4)
    seen = []
    for chunk in ([1.0, 2.0], [3.0, 4.0, 5.0], [6.0], [7.0, 8.0, 9.0, 10.0, 11.0]):
        mv.fit(None, np.array(chunk))
        seen += chunk
        assert mv.values(np.zeros((1, 1)))[0] == pytest.approx(np.mean(seen[-4:]))


def test_n_step_collector_hands_out_each_transition_once_with_brute_force_returns():
    from tfpg.envs.make import make_vec_env
    from tfpg.experience.collectors import NStepCollector
    from tfpg.envs.stepping import VecStepper

    envs = make_vec_env("CartPole-v1", num_envs=3, seed=5, vector_mode="sync")
    rng = np.random.default_rng(0)
    stepper = VecStepper(envs)
    collector = NStepCollector(stepper, lambda obs: rng.integers(0, 2, len(obs)), n=4, gamma=0.5)
    batches = [collector.collect(min_transitions=7) for _ in range(30)]
    envs.close()
    total = sum(b.num_steps for b in batches)
    pending = sum(int(row.live.sum()) for row in collector._rows)
    assert total + pending == stepper.env_steps
    obs = np.concatenate([b.observations for b in batches])
    assert len(np.unique(obs, axis=0)) == len(obs)   # no transition twice
    # CartPole pays 1 per step: the partial return is sum_{k<j} 0.5^k, j = min(4, steps left).
    partial = np.concatenate([b.partial_returns for b in batches])
    mask = np.concatenate([b.bootstrap_mask for b in batches])
    discounts = np.concatenate([b.bootstrap_discounts for b in batches])
    j = np.round(np.log(discounts) / np.log(0.5)).astype(int)
    np.testing.assert_allclose(partial, (1 - 0.5 ** j) / (1 - 0.5), rtol=1e-6)
    assert not mask[j < 4].any() and mask.mean() > 0.5  # a window cut short ended in a termination


def test_kl_adaptive_learning_rate_follows_the_batch_kl_within_its_bounds():
    """lr / 1.5 above 2 x target, x 1.5 below target / 2 (never above --lr), unchanged in between."""
    import keras

    from tfpg.maths.schedules import adapt_learning_rate
    from tfpg.config.run import build_config
    from tfpg.core.errors import ConfigError

    optimizer = keras.optimizers.Adam(3e-4)
    target, max_lr = 0.02, 3e-4
    assert adapt_learning_rate(optimizer, 0.05, target, max_lr) == pytest.approx(2e-4)
    assert adapt_learning_rate(optimizer, 0.02, target, max_lr) == pytest.approx(2e-4)    # within [t/2, 2t]
    assert adapt_learning_rate(optimizer, 0.001, target, max_lr) == pytest.approx(3e-4)
    assert adapt_learning_rate(optimizer, 0.001, target, max_lr) == pytest.approx(3e-4)   # capped at --lr
    for _ in range(100):
        lr = adapt_learning_rate(optimizer, 1.0, target, max_lr)
    assert lr == pytest.approx(1e-6) and float(optimizer.learning_rate.numpy()) == pytest.approx(1e-6)
    with pytest.raises(ConfigError, match=r"--kl-adaptive-lr steers the lr by the batch KL against --target-kl: "
                                          r"set --target-kl > 0 \(e.g. 0.02\)"):
        build_config("reinforce", "CartPole-v1", None, {"kl_adaptive_lr": True})
