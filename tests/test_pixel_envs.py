"""RGB-frame envs outside the ALE (Box2D's CarRacing): preprocessed to the Atari layout, trained end to end."""
import json
import os

import gymnasium as gym
import numpy as np

from conftest import cli_here
from tfpg.envs import make as envs_lib

CAR = "CarRacing-v3"
FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def test_rgb_frames_become_stacks_of_four_grayscale_84x84_frames_newest_last():
    assert gym.make(CAR).observation_space.shape == (96, 96, 3)
    env = envs_lib.make_env(CAR)
    try:
        assert env.observation_space == FRAMES
        obs, _ = env.reset(seed=0)
        assert all(np.array_equal(obs[k], obs[-1]) for k in range(3))   # the reset frame fills the stack
        frames = [obs]
        for _ in range(60):   # full throttle: the car and the view move, so frames differ
            frames.append(env.step(np.array([0.0, 1.0, 0.0], np.float32))[0])
        for before, after in zip(frames, frames[1:]):
            np.testing.assert_array_equal(after[:-1], before[1:])         # the stack shifts by one frame
        assert not np.array_equal(frames[-1][-1], frames[0][-1])
    finally:
        env.close()
    vector = envs_lib.make_vec_env(CAR, 2, seed=0)
    try:
        assert vector.single_observation_space == FRAMES   # training and evaluation see what the export takes
    finally:
        vector.close()


def test_ppo_on_car_racing_trains_with_the_cnn_and_exports_for_the_frames(workdir):
    proc = cli_here(["--algo", "ppo", "--env", CAR, "--num-envs", "2", "--horizon", "16", "--minibatch-size", "16",
                     "--epochs", "1", "--total-steps", "64", "--hidden", "16", "--eval-every", "0", "--no-progress",
                     "--run-name", "car"], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(workdir / "saved_models" / "car" / "tfpg_metadata.json") as f:
        metadata = json.load(f)
    assert metadata["observation_space"]["shape"] == [4, 84, 84]


def test_normalize_obs_given_on_frames_is_refused_in_one_line_and_the_fallbacks_value_is_not(tmp_path, capsys):
    """The actor-critic fallback sets --normalize-obs true for every env; on frames only the flag is an error."""
    from tfpg.training.checks import check_run
    from tfpg.cli.train import main
    from tfpg.algos.registry import build_config

    status = main(["--algo", "ppo", "--env", CAR, "--normalize-obs", "true", "--logdir", str(tmp_path / "runs"),
                   "--export-dir", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert "--normalize-obs keeps running statistics of flat observations" in err and "drop --normalize-obs" in err
    assert not os.listdir(tmp_path)
    fallback = build_config("ppo", CAR, None, {"logdir": str(tmp_path / "runs")})
    assert fallback.normalize_obs
    check_run(fallback)   # not given: accepted (the CNN ignores it)
    check_run(build_config("ppo", CAR, None, {"normalize_obs": False, "logdir": str(tmp_path / "runs")}),
              frozenset({"normalize_obs"}))
