"""Run an exported tfpg SavedModel (or its .tflite / .onnx conversion) in its environment and report the returns.

    python -m tfpg.evaluate saved_models/<run> [--episodes 10] [--seed 0] [--stochastic] [--video DIR]
    python -m tfpg.evaluate saved_models/<run>.tflite        (ai-edge-litert; .onnx: onnxruntime)

Loads with `tf.saved_model.load` only (the policy needs no tfpg code); a converted file runs in its own
runtime, sampling (--stochastic) on the host. A SavedModel is a program: load only exports from sources
you trust.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from tfpg import envs as envs_lib
from tfpg.errors import ConfigError
from tfpg.export_formats import load_actor


def load_policy(path: str, env_id: str | None = None, stochastic: bool = False, seed: int = 0):
    """(act, metadata, gymnasium) after checking the model fits the env; `act` maps a batch of observations
    to actions (see `tfpg.export_formats.load_actor`: SavedModel folder, .tflite or .onnx)."""
    import gymnasium as gym

    act, metadata = load_actor(path, stochastic, seed)
    env_id = env_id or metadata["env_id"]
    spaces = envs_lib.env_spaces(env_id)
    for key, space in (("observation_space", spaces.observation_space), ("action_space", spaces.action_space)):
        if not envs_lib.spaces_match(metadata[key], space):
            raise ConfigError(f"the model at {path} was trained for {metadata['env_id']} whose {key.replace('_', ' ')} "
                              f"is {envs_lib.describe_space(metadata[key])}, but {env_id} has {space}; evaluate it on a matching env")
    return act, metadata, gym


def evaluate(path: str, env_id: str | None = None, episodes: int = 10, seed: int = 0,
             stochastic: bool = False, video_dir: str | None = None) -> np.ndarray:
    """Returns of `episodes` episodes (seeds seed, seed+1, ...) with the greedy (or sampled) action."""
    if episodes <= 0:
        raise ConfigError(f"--episodes must be a positive integer, got {episodes}")
    act, metadata, _ = load_policy(path, env_id, stochastic, seed)
    env_id = env_id or metadata["env_id"]
    # Unclipped rewards: the returns are the real game score (Atari: tfpg's preprocessing, no clipping).
    env = envs_lib.make_env(env_id, render_mode="rgb_array" if video_dir else None)
    if video_dir:
        from gymnasium.wrappers import RecordVideo

        env = RecordVideo(env, video_dir, episode_trigger=lambda i: True, disable_logger=True)
    returns = []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            total, done = 0.0, False
            while not done:
                action = act(np.asarray(obs)[None])[0]
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return np.array(returns)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfpg.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model_dir", help="a folder exported by train.py, or a .tflite / .onnx file from tfpg-export")
    p.add_argument("--env", dest="env_id", default=None, help="env id (default: the one the model was trained on)")
    p.add_argument("--episodes", type=int, default=10, help="episodes to run")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode's reset")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the greedy action")
    p.add_argument("--video", metavar="DIR", default=None, help="record MP4 videos of the episodes into DIR")
    p.add_argument("--json", action="store_true", help="print the returns as JSON")
    args = p.parse_args(argv)
    try:
        returns = evaluate(args.model_dir, args.env_id, args.episodes, args.seed, args.stochastic, args.video)
    except ConfigError as e:
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"returns": returns.tolist(), "mean": returns.mean(), "std": returns.std()}))
    else:
        print(f"{len(returns)} episodes: mean return {returns.mean():.1f} ± {returns.std():.1f} "
              f"(min {returns.min():.1f}, max {returns.max():.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
