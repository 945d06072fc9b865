"""DQN pieces against brute force: TD targets, the compiled loss, target syncs, epsilon, collection."""
from types import SimpleNamespace

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpg.algos.dqn.algorithm import (DQNUpdate, QPolicy, epsilon, epsilon_greedy, sync_target, td_loss,
                            td_targets)
from tfpg.experience.replay import TransitionBatch
from tfpg.envs.stepping import VecStepper

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
GAMMA = 0.9

# A hand-made batch: ordinary, terminated, truncated (time limit: still bootstraps), ordinary.
REWARDS = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
TERMINATED = np.array([False, True, False, False])
TRUNCATED = np.array([False, False, True, False])
NEXT_Q_TARGET = np.array([[1.0, 4.0, -1.0], [7.0, 2.0, 0.0], [-3.0, -2.0, 5.0], [0.5, 0.25, 0.0]], np.float32)
NEXT_Q_ONLINE = np.array([[9.0, 0.0, 1.0], [0.0, 9.0, 0.0], [0.0, 3.0, 2.0], [0.0, 0.0, 1.0]], np.float32)


def brute_force_target(r, terminated, q_target_next, q_online_next=None):
    if terminated:
        return r
    if q_online_next is None:
        return r + GAMMA * max(q_target_next)
    best = max(range(len(q_online_next)), key=lambda a: q_online_next[a])
    return r + GAMMA * q_target_next[best]


@pytest.mark.parametrize("double", [False, True])
def test_td_targets_equal_brute_force(double):
    online = NEXT_Q_ONLINE if double else None
    got = td_targets(REWARDS, TERMINATED, NEXT_Q_TARGET, GAMMA, online).numpy()
    expected = [brute_force_target(REWARDS[i], TERMINATED[i], NEXT_Q_TARGET[i], online[i] if double else None)
                for i in range(len(REWARDS))]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # the truncated transition bootstraps like an ordinary one; the terminated one does not
    assert got[1] == REWARDS[1]
    assert got[2] == pytest.approx(0.5 + GAMMA * (5.0 if not double else -2.0))


def test_td_targets_carry_no_gradient():
    q = tf.Variable(NEXT_Q_TARGET)
    with tf.GradientTape() as tape:
        y = td_targets(REWARDS, TERMINATED, q, GAMMA)
    assert tape.gradient(y, q) is None


def test_huber_and_mse():
    d = tf.constant([-3.0, -0.5, 0.0, 0.8, 2.0])
    huber = np.mean([abs(x) - 0.5 if abs(x) > 1 else 0.5 * x * x for x in d.numpy()])
    assert float(td_loss(d, "huber")) == pytest.approx(huber)
    assert float(td_loss(d, "mse")) == pytest.approx(np.mean(d.numpy() ** 2))


def make_policy(seed=0):
    keras.utils.set_random_seed(seed)
    return QPolicy(OBS_SPACE, gym.spaces.Discrete(3), (16,))


def random_batch(rng, n=32, steps=1):
    shape = (steps, n)
    return TransitionBatch(rng.normal(size=(*shape, 4)).astype(np.float32), rng.integers(0, 3, shape),
                           rng.normal(size=shape).astype(np.float32), rng.normal(size=(*shape, 4)).astype(np.float32),
                           rng.random(shape) < 0.3, rng.random(shape) < 0.3)


def weights(model):
    return [w.copy() for w in model.get_weights()]


@pytest.mark.parametrize("loss, double", [("mse", False), ("huber", True)])
def test_compiled_update_loss_equals_brute_force(loss, double):
    """The td_loss the update reports (before its step) is the per-transition loss in numpy."""
    policy = make_policy()
    opt = keras.optimizers.Adam(1e-3)
    opt.build(policy.variables)
    update = DQNUpdate(policy, opt, GAMMA, loss, double, 0.0, 1000, 1.0)
    for w in policy.target_model.weights:   # a target that differs from the online network
        w.assign(w + 0.1)
    batch = random_batch(np.random.default_rng(0), n=8)
    b = TransitionBatch(*(x[0] for x in vars(batch).values()))
    q = policy.q_values(b.observations).numpy()
    q_next_target = policy.target_q_values(b.next_observations).numpy()
    q_next_online = policy.q_values(b.next_observations).numpy()
    errors = []
    for i in range(8):
        y = brute_force_target(b.rewards[i], b.terminated[i], q_next_target[i], q_next_online[i] if double else None)
        errors.append(q[i, b.actions[i]] - y)
    errors = np.array(errors)
    expected = np.mean(errors ** 2) if loss == "mse" else np.mean(
        np.where(np.abs(errors) <= 1, 0.5 * errors ** 2, np.abs(errors) - 0.5))
    metrics = update(batch)
    assert float(metrics["td_loss"]) == pytest.approx(expected, rel=1e-4)
    assert float(metrics["q_mean"]) == pytest.approx(q.max(-1).mean(), rel=1e-4)


def test_target_network_is_frozen_between_syncs_and_equal_after():
    policy = make_policy()
    for w_online, w_target in zip(policy.model.get_weights(), policy.target_model.get_weights()):
        np.testing.assert_array_equal(w_online, w_target)   # initialised from the main network
    opt = keras.optimizers.Adam(1e-2)
    opt.build(policy.variables)
    update = DQNUpdate(policy, opt, GAMMA, "mse", False, 0.0, 3, 1.0)
    rng = np.random.default_rng(1)
    for sync in range(2):
        frozen = weights(policy.target_model)
        for step in range(3):
            before = weights(policy.model)
            update(random_batch(rng))
            assert any(not np.array_equal(a, b) for a, b in zip(before, policy.model.get_weights()))
            if step < 2:
                for a, b in zip(frozen, policy.target_model.get_weights()):
                    np.testing.assert_array_equal(a, b)
        for a, b in zip(policy.model.get_weights(), policy.target_model.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert int(update.target_syncs.numpy()) == sync + 1
    # several gradient steps in one call sync at the same gradient-step counts
    update(random_batch(rng, steps=4))
    assert int(update.gradient_steps_done.numpy()) == 10 and int(update.target_syncs.numpy()) == 3


def test_polyak_tau_one_is_a_hard_sync_and_tau_below_one_the_closed_form():
    online, target = make_policy(0).model, make_policy(1).model
    online_w, target_w = weights(online), weights(target)
    sync_target(target.weights, online.weights, 1.0)
    for a, b in zip(target.get_weights(), online_w):
        np.testing.assert_array_equal(a, b)
    target.set_weights(target_w)
    tau = 0.05
    sync_target(target.weights, online.weights, tau)
    sync_target(target.weights, online.weights, tau)
    for got, t0, o in zip(target.get_weights(), target_w, online_w):
        # two soft updates: target = o + (1 - tau)^2 (t0 - o)
        np.testing.assert_allclose(got, o + (1 - tau) ** 2 * (t0 - o), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("schedule", ["linear", "exponential"])
def test_epsilon_schedule_endpoints(schedule):
    start, end, decay = 1.0, 0.05, 1000
    assert epsilon(0, start, end, decay, schedule) == start
    assert epsilon(decay, start, end, decay, schedule) == end
    assert epsilon(10 * decay, start, end, decay, schedule) == end
    values = [epsilon(t, start, end, decay, schedule) for t in range(0, decay + 1, 50)]
    assert all(a > b for a, b in zip(values, values[1:]))   # strictly decreasing until decay
    mid = epsilon(decay // 2, start, end, decay, schedule)
    assert mid == pytest.approx((start + end) / 2 if schedule == "linear" else np.sqrt(start * end))


def test_epsilon_greedy_is_per_env():
    rng = np.random.default_rng(0)
    greedy = lambda obs: np.full(len(obs), 2)   # noqa: E731
    obs = np.zeros((10_000, 4))
    assert (epsilon_greedy(greedy, obs, 0.0, 3, rng) == 2).all()
    actions = epsilon_greedy(greedy, obs, 0.3, 3, rng)
    # random with probability 0.3, of which a third picks 2 anyway: P(action != 2) = 0.2
    assert abs(np.mean(actions != 2) - 0.2) < 0.02
    assert set(np.unique(epsilon_greedy(greedy, obs, 1.0, 3, rng))) == {0, 1, 2}


def test_stepper_keeps_final_observations_and_skips_autoreset_steps():
    from gymnasium.wrappers.vector import RecordEpisodeStatistics

    envs = RecordEpisodeStatistics(gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync",
                                                max_episode_steps=5))
    envs.reset(seed=0)
    episodes = []
    stepper = VecStepper(envs, on_episode=lambda r, n: episodes.extend(n.tolist()))
    rows = []
    for _ in range(18):
        before = stepper.observations.copy()
        t = SimpleNamespace(**stepper.step(np.array([0, 1])).transitions())
        rows.append((before, t))
    envs.close()
    total = sum(len(t.rewards) for _, t in rows)
    assert stepper.env_steps == total == 15 * 2   # 18 vector steps, 3 of them resets per env
    assert all((r == 1.0).all() for _, t in rows for r in [t.rewards])
    ends = [t for _, t in rows if t.truncated.any()]
    assert len(ends) == 3 and all(t.truncated.all() and not t.terminated.any() for t in ends)
    assert episodes == [5] * 6
    # s' of a time-limit end is the final observation (the next reset observation is another state)
    for k, (_, t) in enumerate(rows[:-2]):
        if t.truncated.any():
            reset_obs = rows[k + 1][0]   # observations before the autoreset step: still the final ones
            np.testing.assert_array_equal(t.next_observations, reset_obs)
            assert len(rows[k + 1][1].rewards) == 0   # the autoreset step yields no transition
            first_of_next = rows[k + 2][1]
            assert not np.allclose(first_of_next.observations, t.next_observations)
