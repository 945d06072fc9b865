"""Run an exported tfpg SavedModel (or its .tflite / .onnx conversion) in its environment and report the returns.

    python -m tfpg.evaluate saved_models/<run> [--episodes 10] [--seed 1000000] [--stochastic] [--video DIR]
    python -m tfpg.evaluate saved_models/<run>.tflite        (ai-edge-litert; .onnx: onnxruntime)

Loads with `tf.saved_model.load` only (the policy needs no tfpg code); a converted file runs in its own
runtime, sampling (--stochastic) on the host. Episode k starts from reset seed `--seed + k` with the
same evaluation function training uses, so by default the returns are those of the run's last greedy
evaluation (`eval_reward`) for the same policy. A SavedModel is a program: load only exports from
sources you trust.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from tfpg.core.errors import ConfigError, EnvFailure
from tfpg.envs import make as envs_lib
from tfpg.training.evaluation import EVAL_SEED, evaluate_returns, make_eval_envs


def env_of(metadata: dict, env_id: str | None) -> tuple[str, dict | None]:
    """(env id, constructor kwargs) to evaluate on: the export's own env with its recorded --env-kwargs, or `env_id`
    (without them) where one is given."""
    if env_id is None or env_id == metadata["env_id"]:
        return metadata["env_id"], metadata.get("env_kwargs")   # exports from before env_kwargs have none
    return env_id, None


def load_policy(path: str, env_id: str | None = None, stochastic: bool = False, seed: int = 0):
    """(act, metadata) after checking the model fits the env; `act` maps a batch of observations to
    actions (see `tfpg.export.formats.load_actor`: SavedModel folder, .tflite or .onnx)."""
    from tfpg.export.formats import load_actor

    act, metadata = load_actor(path, stochastic, seed)
    env_id, env_kwargs = env_of(metadata, env_id)
    spaces = envs_lib.env_spaces(env_id, env_kwargs)
    for key, space in (("observation_space", spaces.observation_space), ("action_space", spaces.action_space)):
        if not envs_lib.spaces_match(metadata[key], space):
            raise ConfigError(f"the model at {path} was trained for {metadata['env_id']} whose "
                              f"{key.replace('_', ' ')} is {envs_lib.describe_space(metadata[key])}, but {env_id} "
                              f"has {space}; evaluate it on a matching env")
    return act, metadata


def evaluate(path: str, env_id: str | None = None, episodes: int = 10, seed: int = EVAL_SEED,
             stochastic: bool = False, video_dir: str | None = None) -> np.ndarray:
    """Returns of `episodes` episodes (episode k from reset seed seed + k), greedy or sampled actions."""
    if episodes <= 0:
        raise ConfigError(f"--episodes must be a positive integer, got {episodes}")
    act, metadata = load_policy(path, env_id, stochastic, seed)
    env_id, env_kwargs = env_of(metadata, env_id)
    # Unclipped rewards: the returns are the real game score (Atari: tfpg's preprocessing, no clipping).
    if video_dir:   # one sub-env, so the video shows one episode at a time
        from gymnasium.wrappers.vector import RecordVideo

        envs = RecordVideo(make_eval_envs(env_id, 1, render_mode="rgb_array", env_kwargs=env_kwargs), video_dir,
                           episode_trigger=lambda i: True)
    else:
        envs = make_eval_envs(env_id, episodes, env_kwargs=env_kwargs)
    try:
        return evaluate_returns(act, envs, episodes, seed, name=env_id)
    finally:
        envs.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfpg.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model_dir", help="a folder exported by train.py, or a .tflite / .onnx file from tfpg-export")
    p.add_argument("--env", dest="env_id", default=None, help="env id (default: the one the model was trained on)")
    p.add_argument("--episodes", type=int, default=10, help="episodes to run")
    p.add_argument("--seed", type=int, default=EVAL_SEED,
                   help="episode k starts from reset seed SEED + k (the default is the seeds training evaluates on)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the greedy action")
    p.add_argument("--video", metavar="DIR", default=None, help="record MP4 videos of the episodes into DIR")
    p.add_argument("--json", action="store_true", help="print the returns as JSON")
    args = p.parse_args(argv)
    if not args.model_dir.endswith((".tflite", ".onnx")):   # converted files run without TensorFlow
        from tfpg.core.quiet import import_tensorflow

        import_tensorflow()
    try:
        returns = evaluate(args.model_dir, args.env_id, args.episodes, args.seed, args.stochastic, args.video)
    except ConfigError as e:
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 2
    except EnvFailure as e:   # the env raised or went non-finite: one line, as in training
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"returns": returns.tolist(), "mean": returns.mean(), "std": returns.std()}))
    else:
        print(f"{len(returns)} episodes: mean return {returns.mean():.1f} ± {returns.std():.1f} "
              f"(min {returns.min():.1f}, max {returns.max():.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
