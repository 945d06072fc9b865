"""Atari: env construction, reward clipping order, the pixel replay, both algorithms end to end."""
import json
import os

import gymnasium as gym
import numpy as np
import pytest

from conftest import cli_here, run_tensorflow_only
from tfpg.envs import atari
from tfpg.envs import make as envs_lib
from tfpg.experience.replay import PixelReplayBuffer
from tfpg.envs.stepping import VecStepper

PONG = "ALE/Pong-v5"


def test_atari_env_frames_are_uint8_stacks_and_skip_four():
    env = envs_lib.make_env(PONG)
    try:
        obs, _ = env.reset(seed=0)
        assert env.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
        assert all(np.array_equal(obs[k], obs[-1]) for k in range(3))   # reset padding repeats the reset frame
        ale = env.unwrapped.ale
        before = ale.getEpisodeFrameNumber()
        for _ in range(5):
            env.step(0)
        assert ale.getEpisodeFrameNumber() - before == 20                # frame skip 4
        assert ale.getFloat("repeat_action_probability") == 0.0         # no sticky actions (NoFrameskip-v4)
    finally:
        env.close()


class ScoreEnv(gym.Env):
    """Rewards like a game's (4 and 7 point bricks, a lost point): 3 steps, score 4 + 7 - 1 = 10."""

    observation_space = gym.spaces.Box(0, 255, (2,), np.uint8)
    action_space = gym.spaces.Discrete(2)
    REWARDS = (4.0, 7.0, -1.0)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.uint8), {}

    def step(self, action):
        r = self.REWARDS[self.t]
        self.t += 1
        return np.zeros(2, np.uint8), r, self.t == len(self.REWARDS), False, {}


@pytest.mark.parametrize("training", [True, False])
def test_clipping_applies_to_training_rewards_only_and_stats_keep_the_real_score(training):
    envs = atari.record_then_clip(gym.vector.SyncVectorEnv([ScoreEnv] * 2), clip=training)
    envs.reset(seed=0)
    rewards = []
    for _ in range(3):
        _, r, _, _, info = envs.step(np.zeros(2, np.int64))
        rewards.append(r[0])
    assert rewards == ([1.0, 1.0, -1.0] if training else [4.0, 7.0, -1.0])
    assert info["_episode"].all() and list(info["episode"]["r"]) == [10.0, 10.0]


def test_training_env_is_clipped_and_evaluation_env_is_not():
    train = envs_lib.make_vec_env(PONG, 2, seed=0, training=True)
    evaluation = envs_lib.make_vec_env(PONG, 2, seed=0)
    try:
        assert type(train).__name__ == "TransformReward" and type(evaluation).__name__ == "RecordEpisodeStatistics"
        obs, _ = train.reset(seed=0)
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        for _ in range(200):
            _, r, *_ = train.step(train.action_space.sample())
            assert set(np.unique(r)) <= {-1.0, 0.0, 1.0}
    finally:
        train.close()
        evaluation.close()


@pytest.mark.parametrize("args, message", [
    (["--env", "ALE/Pong-v4"], "did you mean"),
    (["--env", "CartPole-v1", "--terminal-on-life-loss", "true"], "Atari games only"),
    (["--preset", "dqn-pong", "--vector-mode", "vector_entry_point"], "black frames"),
    (["--preset", "book-pong-pg", "--baseline", "linear"], "--baseline linear fits flat observations"),
])
def test_bad_atari_input_is_one_clear_line(args, message, workdir):
    proc = cli_here(args + ["--total-steps", "10"], cwd=workdir)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("train.py: error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]


class FrameEnv(gym.Env):
    """Random 6x6 frames, episodes of 1-12 steps that terminate or truncate; often a repeated frame."""

    observation_space = gym.spaces.Box(0, 255, (6, 6), np.uint8)
    action_space = gym.spaces.Discrete(10**9)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.length = 0, int(self.np_random.integers(1, 13))
        self.frame = self.np_random.integers(0, 256, (6, 6), dtype=np.uint8)
        return self.frame, {}

    def step(self, action):
        self.t += 1
        if self.np_random.random() < 0.7:   # else the frame repeats (a static screen)
            self.frame = self.np_random.integers(0, 256, (6, 6), dtype=np.uint8)
        end = self.t >= self.length
        return self.frame, float(action % 7), end and self.t % 2 == 0, end and self.t % 2 == 1, {}


def _check_samples(buffer, pushed, batch=64):
    b = buffer.sample(batch, 2)
    assert b.observations.shape == (2, batch, 4, 6, 6) and b.observations.dtype == np.uint8
    for obs, action, reward, next_obs, term, trunc in zip(
            *(x.reshape(-1, *x.shape[2:]) for x in (b.observations, b.actions, b.rewards, b.next_observations,
                                                     b.terminated, b.truncated))):
        want = pushed[int(action)]
        np.testing.assert_array_equal(obs, want[0])
        np.testing.assert_array_equal(next_obs, want[1])
        assert (reward, term, trunc) == (want[2], want[3], want[4])
    return set(b.actions.ravel().tolist())


def test_pixel_replay_rebuilds_the_stacks_the_env_produced():
    """3 interleaved envs, many episode ends and ring wrap-arounds, a mid-episode restart: every
    sampled (s, a, r, s') equals what FrameStackObservation produced (the action identifies it)."""
    n = 3
    envs = gym.vector.SyncVectorEnv([lambda: gym.wrappers.FrameStackObservation(FrameEnv(), 4)] * n,
                                    autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    envs.reset(seed=0)
    stepper = VecStepper(envs)
    buffer = PixelReplayBuffer(60, envs.single_observation_space, envs.single_action_space, seed=0, num_envs=n)
    pushed, counter, seen = {}, 0, set()
    for step in range(400):
        if step == 200:
            stepper.restart(seed=7)   # what a checkpoint does: envs reset mid-episode
        actions = counter + np.arange(n)
        counter += n
        t = stepper.step(actions).transitions()
        for i in range(len(t["rewards"])):
            pushed[int(t["actions"][i])] = (t["observations"][i].copy(), t["next_observations"][i].copy(),
                                            t["rewards"][i], bool(t["terminated"][i]), bool(t["truncated"][i]))
        buffer.add(**t)
        seen |= _check_samples(buffer, pushed)
        recent = counter - 3 * 20   # 20 frames per env: nothing older may come back
        assert min(_check_samples(buffer, pushed)) >= recent - n
    envs.close()
    assert len(seen) > 300   # sampling covers the stored transitions, not a few of them
    # len() counts exactly the transitions that can be sampled (brute force over every slot)
    envs_, slots = np.divmod(np.arange(n * buffer.ring), buffer.ring)
    assert len(buffer) == int(buffer._valid(envs_, slots).sum()) < buffer.added
    assert len(buffer) < 60   # fewer than capacity: episode starts and final frames take slots too


def test_pixel_replay_on_pong_frames_and_memory_per_transition():
    envs = envs_lib.make_vec_env(PONG, 2, seed=1)
    stepper = VecStepper(envs)
    space = envs.single_observation_space
    buffer = PixelReplayBuffer(120, space, envs.single_action_space, seed=0, num_envs=2)
    pushed = {}
    rng = np.random.default_rng(0)
    for step in range(150):
        t = stepper.step(rng.integers(0, 6, size=2)).transitions()
        keys = step * 2 + t["env_ids"]
        for i, key in enumerate(keys):
            pushed[int(key)] = (t["observations"][i].copy(), t["next_observations"][i].copy())
        t["actions"] = keys   # identify the transitions through the stored action
        buffer.add(**t)
    envs.close()
    b = buffer.sample(200)
    for obs, key, next_obs in zip(b.observations, b.actions, b.next_observations):
        np.testing.assert_array_equal(obs, pushed[int(key)][0])
        np.testing.assert_array_equal(next_obs, pushed[int(key)][1])
    frame = 84 * 84
    assert frame <= buffer.bytes_per_transition < frame + 48
    assert 1_000_000 * buffer.bytes_per_transition < 8 * 2**30


def _tf_only_act(export_dir):
    code = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({export_dir!r})\n"
        "frames = np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8)\n"
        "sig = m.signatures['serving_default']\n"
        "spec = sig.structured_input_signature[1]['observations']\n"
        "a = sig(observations=tf.constant(frames))['action'].numpy()\n"
        "print(json.dumps({'dtype': spec.dtype.name, 'shape': spec.shape.as_list(), 'actions': a.tolist(), "
        "'modules': sorted(k for k in sys.modules\n"
        "                  if k.split('.')[0] in ('tfpg', 'gymnasium', 'ale_py', 'tensorflow_probability'))}))\n")
    return run_tensorflow_only(code, cwd="/")


@pytest.mark.parametrize("preset, flags", [
    ("book-pong-pg", ["--num-envs", "2", "--steps-per-update", "32"]),
    ("zoo-dqn-pong", ["--num-envs", "2", "--learning-starts", "100", "--buffer-size", "1000", "--log-every", "100"]),
])
def test_pong_trains_end_to_end_and_the_export_acts_on_raw_frames(preset, flags, workdir):
    proc = cli_here(["--preset", preset, "--total-steps", "300", "--hidden", "16", "--no-progress",
                     "--run-name", "r", *flags], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(workdir / "runs" / "r" / "config.json") as f:
        config = json.load(f)
    assert config["env_id"] == PONG and config["hidden"] == [16]
    out = _tf_only_act(str(workdir / "saved_models" / "r"))
    assert out["dtype"] == "uint8" and out["shape"] == [None, 4, 84, 84]
    assert len(out["actions"]) == 3
    assert out["modules"] == []   # no tfpg, gymnasium, ale-py or TFP: TensorFlow and numpy only


def test_a_cnn_export_acts_exactly_as_the_in_process_policy(workdir):
    """The same frames give the same greedy actions in a TensorFlow-only process as in process."""
    from tfpg.export.saved_model import export_policy
    from tfpg.models.policies import CategoricalPolicy

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    policy = CategoricalPolicy(space, gym.spaces.Discrete(6), hidden=(16,), seed=0)
    for v in policy.variables:   # away from the near-uniform init, so the actions vary with the frames
        v.assign(np.random.default_rng(2).normal(0, 0.05, size=v.shape).astype(np.float32))
    export_policy(policy, {"env_id": PONG}, str(workdir / "cnn"))
    frames = np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84), dtype=np.uint8)
    expected = policy.mode(frames).numpy().tolist()
    assert _tf_only_act(str(workdir / "cnn"))["actions"] == expected


def test_evaluate_an_atari_export_with_video(workdir):
    proc = cli_here(["--preset", "book-pong-pg", "--num-envs", "2", "--steps-per-update", "32", "--total-steps", "64",
                     "--hidden", "8", "--no-progress", "--run-name", "v"], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli_here([str(workdir / "saved_models" / "v"), "--episodes", "1", "--video", str(workdir / "videos"),
                     "--json"], cwd=workdir, module="tfpg.evaluate")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert -21 <= result["returns"][0] <= 21 and float(result["returns"][0]).is_integer()   # the real Pong score
    assert any(name.endswith(".mp4") for name in os.listdir(workdir / "videos"))


def test_atari_presets_pin_their_sources_values():
    from tfpg.algos.registry import build_config, default_preset

    pg = build_config(None, None, "book-pong-pg", {})
    assert (pg.algo, pg.env_id, pg.num_envs, pg.lr, pg.adam_eps, pg.entropy_beta, pg.steps_per_update, pg.returns,
            pg.n_steps, pg.gamma, pg.baseline, pg.baseline_window, pg.grad_clip, pg.stop_reward) == \
        ("reinforce", PONG, 32, 1e-4, 1e-3, 0.01, 128, "nstep", 10, 0.99, "moving", 1_000_000, 0.1, 18.0)
    for game in ("Pong", "Breakout"):
        q = build_config(None, None, f"zoo-dqn-{game.lower()}", {})
        assert (q.env_id, q.buffer_size, q.lr, q.batch_size, q.learning_starts, q.train_freq, q.gradient_steps,
                q.target_sync * q.train_freq, q.eps_end, q.eps_decay_steps, q.loss, q.gamma, q.grad_clip,
                q.checkpoint_replay) == (f"ALE/{game}-v5", 100_000, 1e-4, 32, 100_000, 4, 1, 1000, 0.01, 1_000_000,
                                         "huber", 0.99, 10.0, False)
        assert default_preset("dqn", q.env_id).name == f"zoo-dqn-{game.lower()}"
