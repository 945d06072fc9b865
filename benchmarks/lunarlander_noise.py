"""What exploration noise costs a lander: the shipped policy's mean action plus fixed Gaussian noise.

    python benchmarks/lunarlander_noise.py [--episodes 20] [--docs]

For each sigma, the shipped `saved_models/lunarlander-pg` acts with a = clip(mu(s) + sigma * eps)
on the same 20 fixed-seed episodes, with the noise on both action dimensions, on the side engine
(a_1) only, or on the main engine (a_0) only. Prints mean return, mean length and the fraction of
episodes that terminated (landed and came to rest, or crashed) rather than hit the 1,000-step limit,
and with --docs writes the docs section `lander-noise`. Not a speed measurement: it explains why
the training `reward_100` of a Gaussian policy with sigma ~ 1 stays far below its greedy return.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import ROOT, publish  # noqa: E402

MODEL = os.path.join(ROOT, "saved_models", "lunarlander-pg")
SIGMAS = (0.0, 0.15, 0.3, 0.6, 0.9)
NOISY_DIMS = {"both": (0, 1), "side engine only": (1,), "main engine only": (0,)}


def noisy_episodes(model, sigma: float, dims: tuple, episodes: int, seed: int = 100) -> dict:
    """One episode per sub-env (seeds seed..seed+episodes-1); returns mean return, length, terminated share."""
    envs = gym.make_vec("LunarLanderContinuous-v3", num_envs=episodes, vectorization_mode="sync")
    obs, _ = envs.reset(seed=list(range(seed, seed + episodes)))
    rng = np.random.default_rng(0)
    returns, lengths = np.zeros(episodes), np.zeros(episodes, int)
    done, terminated = np.zeros(episodes, bool), np.zeros(episodes, bool)
    while not done.all():
        mean = model.signatures["distribution"](observations=tf.constant(obs, tf.float32))["mean"].numpy()
        noise = np.zeros_like(mean)
        noise[:, dims] = sigma * rng.normal(size=(episodes, len(dims)))
        obs, rewards, term, trunc, _ = envs.step(np.clip(mean + noise, -1.0, 1.0))
        running = ~done       # later steps of a finished sub-env belong to its next episode: ignore them
        returns[running] += rewards[running]
        lengths[running] += 1
        terminated |= running & term
        done |= term | trunc
    envs.close()
    return {"return": float(returns.mean()), "length": float(lengths.mean()), "terminated": float(terminated.mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    model = tf.saved_model.load(MODEL)
    rows = []
    for sigma in SIGMAS:
        for name, dims in NOISY_DIMS.items():
            if sigma == 0 and name != "both":
                continue
            r = {"sigma": sigma, "noise on": name if sigma else "none (greedy)",
                 **noisy_episodes(model, sigma, dims, args.episodes)}
            print(r, flush=True)
            rows.append(r)
    lines = ["| σ | noise on | mean return | mean length | episodes ended by termination |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['sigma']:.2f} | {r['noise on']} | {r['return']:.1f} | {r['length']:.0f} | {r['terminated']:.0%} |"
              for r in rows]
    text = ("\n".join(lines) + f"\n\nShipped `saved_models/lunarlander-pg`, a = clip(μ(s) + σ·ε), the same {args.episodes} "
            "episodes (seeds 100–119) for every row; `python benchmarks/lunarlander_noise.py --docs`.")
    publish("lander-noise", text, "lunarlander_noise.json", {"rows": rows}, args.docs)


if __name__ == "__main__":
    main()
