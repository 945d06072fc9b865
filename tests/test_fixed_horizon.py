"""FixedHorizonCollector: T vector steps x N envs, against single envs stepped by hand."""
import gymnasium as gym
import numpy as np

from tfpg.experience.collectors import FixedHorizonCollector
from tfpg.envs.stepping import VecStepper

N, T, LIMIT = 3, 10, 10   # pushing mostly one way ends CartPole near the 10-step limit: both cases


class HandStepped:
    """One CartPole per column, stepped one transition at a time with NEXT_STEP autoreset written out:
    after an episode ends, the next vector step only resets that env."""

    def __init__(self, seed):
        self.envs = [gym.make("CartPole-v1", max_episode_steps=LIMIT) for _ in range(N)]
        self.restart(seed)

    def restart(self, seed):
        self.obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)]
        self.pending_reset = [False] * N

    def row(self, i, action):
        """(obs, reward, terminated, truncated, live, next_obs) of env i's next vector step."""
        env, obs = self.envs[i], self.obs[i]
        if self.pending_reset[i]:
            self.obs[i], _ = env.reset()
            self.pending_reset[i] = False
            return obs, 0.0, False, False, False, self.obs[i]
        self.obs[i], reward, terminated, truncated, _ = env.step(int(action))
        self.pending_reset[i] = terminated or truncated
        return obs, reward, terminated, truncated, True, self.obs[i]


def check_against_hand(rollout, hand):
    seen = {"terminated": 0, "truncated": 0, "autoreset": 0}
    next_obs = rollout.next_observations()
    for t in range(T):
        for i in range(N):
            obs, reward, terminated, truncated, live, following = hand.row(i, rollout.actions[t, i])
            np.testing.assert_array_equal(rollout.observations[t, i], obs)
            np.testing.assert_array_equal(next_obs[t, i], following)   # the final observation at an end
            assert (rollout.rewards[t, i], rollout.terminated[t, i], rollout.truncated[t, i], rollout.live[t, i]) == \
                (reward, terminated, truncated, live), (t, i)
            seen["terminated"] += terminated
            seen["truncated"] += truncated
            seen["autoreset"] += not live
    for i in range(N):
        np.testing.assert_array_equal(rollout.last_observations[i], hand.obs[i])
    return seen


def test_fixed_horizon_rollouts_equal_hand_stepped_envs_across_calls_and_a_restart():
    envs = gym.make_vec("CartPole-v1", num_envs=N, vectorization_mode="sync", max_episode_steps=LIMIT)
    stepper = VecStepper(envs, "CartPole-v1", seed=11)
    rng = np.random.default_rng(0)
    collector = FixedHorizonCollector(stepper, lambda obs: (rng.random(len(obs)) < 0.15).astype(np.int64), T)
    hand = HandStepped(11)
    seen = {"terminated": 0, "truncated": 0, "autoreset": 0}
    live_total = 0
    for call in range(6):
        if call == 4:                 # what the trainer does at a checkpoint
            stepper.restart(500)
            hand.restart(500)
        rollout = collector.collect()
        assert rollout.observations.shape == (T, N, 4) and rollout.rewards.shape == (T, N)
        live_total += rollout.num_transitions
        for key, count in check_against_hand(rollout, hand).items():
            seen[key] += count
    envs.close()
    assert stepper.env_steps == live_total     # autoreset rows are not counted as env steps
    assert min(seen.values()) >= 3, seen       # every case was exercised
