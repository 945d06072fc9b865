"""Collection speed of sync vs async vector envs for the Gaussian policy on LunarLanderContinuous-v3.

    python benchmarks/vector_modes.py [--num-envs 8 16] [--steps 40000] [--docs]

Times EpisodeCollector (one batched policy call per vector step, NEXT_STEP autoreset) with an
untrained GaussianPolicy of the tuned preset's shape, no updates: env steps per second of pure
collection. Run it alone on the machine: it measures how the two cores are shared.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import machine, save, write_docs_section  # noqa: E402

ENV = "LunarLanderContinuous-v3"


def collect_rate(mode: str, num_envs: int, steps: int) -> float:
    import keras

    from tfpg.envs.make import make_vec_env
    from tfpg.models.policies import GaussianPolicy
    from tfpg.experience.collectors import EpisodeCollector

    envs = make_vec_env(ENV, num_envs, seed=0, vector_mode=mode)
    keras.utils.set_random_seed(0)
    policy = GaussianPolicy(envs.single_observation_space, envs.single_action_space, hidden=(64, 64),
                            normalize_obs=True, activation="tanh")
    collector = EpisodeCollector(envs, policy.act_numpy, to_env=policy.env_action)
    collector.collect(min_steps=2000)            # warm up: traces, subprocess start
    start_steps, t0 = collector.env_steps, time.perf_counter()
    collector.collect(min_steps=steps)
    rate = (collector.env_steps - start_steps) / (time.perf_counter() - t0)
    envs.close()
    return rate


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num-envs", type=int, nargs="+", default=[8, 16])
    p.add_argument("--steps", type=int, default=40_000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help="write the table into its page under docs/results/ (--readme: the old name)")
    args = p.parse_args()
    rows = []
    for n in args.num_envs:
        rates = {mode: [] for mode in ("sync", "async")}
        for _ in range(args.repeats):      # alternate, so background load hits both alike
            for mode in rates:
                rates[mode].append(collect_rate(mode, n, args.steps))
        rows.append({"num_envs": n, **{m: max(r) for m, r in rates.items()}})
        print(rows[-1], flush=True)
    lines = ["| envs | sync steps/s | async steps/s |", "|---|---|---|"]
    lines += [f"| {r['num_envs']} | {r['sync']:,.0f} | {r['async']:,.0f} |" for r in rows]
    m = machine()
    text = ("Collection only (policy calls + env steps, no updates), " + ENV + ", best of "
            f"{args.repeats}; {m['cpus']} cores, {m['date']}; `python benchmarks/vector_modes.py --docs`.\n\n"
            + "\n".join(lines))
    print(text)
    save("vector_modes_lunarlander.json", {"machine": m, "rows": rows})
    if args.docs:
        write_docs_section("vector-modes", text)


if __name__ == "__main__":
    main()
