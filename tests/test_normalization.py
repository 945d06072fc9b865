"""Reward normalisation: the discounted returns, their running variance and the scaled rewards, by brute force."""
import numpy as np

from tfpg.models.normalization import RewardNormalizer, RunningMoments


def brute_force_returns(rewards, ended, live, gamma):
    """Per env, walk the live rows in time order: R = gamma R + r, recorded, then R = 0 after an episode's end."""
    horizon, n = rewards.shape
    returns, running = np.zeros((horizon, n)), np.zeros(n)
    for i in range(n):
        for t in range(horizon):
            if not live[t, i]:
                continue
            running[i] = gamma * running[i] + rewards[t, i]
            returns[t, i] = running[i]
            if ended[t, i]:
                running[i] = 0.0
    return returns


def test_rewards_are_divided_by_the_std_of_every_discounted_return_so_far_across_rollouts():
    rng = np.random.default_rng(0)
    gamma, n = 0.9, 3
    normalizer = RewardNormalizer(n, gamma)
    rollouts = []
    for horizon in (7, 12, 5):   # episodes run on across rollouts, as in a fixed-horizon collector
        rewards = rng.normal(-3.0, 2.0, size=(horizon, n)).astype(np.float32)
        ended = rng.random((horizon, n)) < 0.25
        live = np.ones((horizon, n), bool)
        live[1:] &= ~ended[:-1]          # NEXT_STEP autoreset: the row after an end is not a transition
        ended &= live
        rewards[~live] = 0.0
        rollouts.append((rewards, ended, live))
    every_return = brute_force_returns(*(np.concatenate(x) for x in zip(*rollouts)), gamma)
    seen = []
    for k, (rewards, ended, live) in enumerate(rollouts):
        scaled = normalizer(rewards, ended, live)
        start = sum(len(r[0]) for r in rollouts[:k])
        seen.append(every_return[start:start + len(rewards)][live])
        std = np.concatenate(seen).std()    # population std of all returns so far, this rollout's included
        np.testing.assert_allclose(scaled[live], np.clip(rewards[live] / np.sqrt(std ** 2 + 1e-8), -10, 10),
                                   rtol=1e-5)
        assert np.all(scaled[~live] == 0.0)
    assert normalizer.moments.count == sum(int(r[2].sum()) for r in rollouts)


def test_scaled_rewards_keep_their_sign_are_clipped_and_restart_from_zero_after_reset():
    normalizer = RewardNormalizer(1, 0.99)
    history = 400
    normalizer(np.full((history, 1), 0.001, np.float32), np.zeros((history, 1), bool), np.ones((history, 1), bool))
    live, ended = np.ones((4, 1), bool), np.zeros((4, 1), bool)
    out = normalizer(np.array([[-0.001], [5.0], [0.0], [0.002]], np.float32), ended, live)
    assert 5.0 / np.sqrt(normalizer.moments.var[0]) > 10     # so the second reward is clipped
    assert out[0, 0] < 0 and out[1, 0] == 10.0 and out[2, 0] == 0.0 and 0 < out[3, 0] < 10
    other = RewardNormalizer(1, 0.99)
    other.load(normalizer.state())   # R is mid-episode here: the running return must travel with the moments
    assert other.returns[0] != 0.0
    rewards = np.array([[0.5], [-0.25]], np.float32)
    np.testing.assert_array_equal(other(rewards, ended[:2], live[:2]), normalizer(rewards, ended[:2], live[:2]))
    assert other.moments.count == normalizer.moments.count == history + 6


def test_reset_restarts_the_running_return_of_the_given_envs_only():
    normalizer = RewardNormalizer(4, 0.5)
    live, ended = np.ones((1, 4), bool), np.zeros((1, 4), bool)
    normalizer(np.full((1, 4), 2.0, np.float32), ended, live)
    normalizer.reset(slice(2, 4))       # a restarted rollout worker's two envs
    normalizer(np.full((1, 4), 2.0, np.float32), ended, live)
    np.testing.assert_array_equal(normalizer.returns, [3.0, 3.0, 2.0, 2.0])   # 0.5 * 2 + 2 where R ran on


def test_running_moments_equal_numpy_over_all_batches():
    rng = np.random.default_rng(1)
    moments = RunningMoments(2)
    batches = [rng.normal([100.0, -1.0], [30.0, 1e-3], size=(k, 2)) for k in (1, 9, 400)]
    for b in batches:
        moments.update(b)
    every = np.concatenate(batches)
    np.testing.assert_allclose(moments.mean, every.mean(0), rtol=1e-12)
    np.testing.assert_allclose(moments.var, every.var(0), rtol=1e-9)
    assert moments.count == len(every)


def test_reinforce_scales_each_episodes_rewards_by_the_std_of_its_running_returns():
    """REINFORCE's complete episodes, concatenated: R restarts at every episode, and reward-to-go is taken of
    r / sqrt(Var[R]) with Var over every step of the episodes collected so far."""
    from tfpg.algos.reinforce.algorithm import Reinforce
    from tfpg.config.run import build_config
    from tfpg.envs.make import env_spaces, make_train_envs
    from tfpg.maths.returns import reward_to_go
    from tfpg.envs.stepping import VecStepper

    config = build_config("reinforce", "Pendulum-v1", None, dict(
        num_envs=2, returns="reward_to_go", baseline="none", normalize_reward=True, steps_per_update=300,
        hidden=(8,), seed=0))
    algo = Reinforce(config, env_spaces("Pendulum-v1"), VecStepper(make_train_envs(config), "Pendulum-v1", seed=0))
    collected = []
    collect = algo.collector.collect
    algo.collector.collect = lambda **kw: collected.append(collect(**kw)) or collected[-1]
    batches = [algo.collect() for _ in range(2)]
    running = []
    for episodes, batch in zip(collected, batches):
        starts = np.r_[0, np.cumsum(episodes.lengths)[:-1]]
        for start, length in zip(starts, episodes.lengths):
            r = episodes.rewards[start:start + length].astype(np.float64)
            running += [sum(config.gamma ** (t - k) * r[k] for k in range(t + 1)) for t in range(length)]
        scale = 1.0 / np.sqrt(np.var(running) + 1e-8)
        expected = reward_to_go(np.clip(episodes.rewards * scale, -10, 10), episodes.lengths, config.gamma)
        np.testing.assert_allclose(batch.returns, expected, rtol=1e-4)
    assert len(collected) == 2 and collected[1].num_steps >= 300


def test_a_config_saved_before_an_option_existed_resumes_as_it_trained():
    """config.json of a run from before --normalize-reward / --critic-activation / --kl-adaptive-lr: resumed with
    the behaviour it had (no reward scaling, a ReLU critic, a fixed lr), not today's defaults, which would not
    fit its checkpoint."""
    from tfpg.algos.a2c.algorithm import A2CConfig
    from tfpg.algos.dqn.algorithm import DQNConfig
    from tfpg.config.run import with_fields_added_later

    saved = A2CConfig().to_dict()
    del saved["normalize_reward"], saved["critic_activation"], saved["kl_adaptive_lr"]
    config = A2CConfig(**with_fields_added_later(saved, A2CConfig))
    assert config.normalize_reward is False and config.critic_activation == "relu" and not config.kl_adaptive_lr
    assert A2CConfig().normalize_reward is True and A2CConfig().critic_activation == "tanh"   # today's defaults
    kept = A2CConfig(normalize_reward=True, critic_activation="tanh").to_dict()
    assert with_fields_added_later(kept, A2CConfig) == kept      # a saved value is never replaced
    dqn = DQNConfig().to_dict()
    assert with_fields_added_later(dqn, DQNConfig) == dqn        # fields it does not have are not added
