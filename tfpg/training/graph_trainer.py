"""The trainer of `--backend graph`: K agents, one compiled program per iteration, the rest as for gymnasium.

    seeds s_k = --seed + k -> template policy, the algorithm's graph learner (K stacked agents),
                              GraphCollector (K x N in-graph envs), per agent: logger, episode stats, evaluator
    compile: the first call of the program (trace + XLA compile + that first iteration and its logging), timed apart
    loop:    program() -> per-agent metrics [K], episodes that ended inside the graph [T, K, N]
             non-finite guard · reward_100 per agent · evaluation (gymnasium, greedy) · log · checkpoint
    end:     checkpoint if interrupted · last evaluation · export of every agent · summary.json

Layout: with K = 1 the run folder and export are those of a gymnasium run; with K > 1 agent s logs to
RUN_DIR/seed_<s>/ (its events, config.json with its own seed, summary.json) and exports to
EXPORT_DIR/<run-name>/seed_<s>; RUN_DIR holds the run's config.json, summary.json and the one checkpoint
of all agents. A checkpoint holds the env state, the episode counters and every agent's key, so a
resumed run continues exactly (no re-seeding, unlike gymnasium envs). The run stops when every agent
has solved (each agent's first solve is recorded: env steps and seconds), at the step budget, or on a signal.

The learner (`algorithm.graph_learner(config, spaces, template, seeds)` of a `GraphTrainable` algorithm:
GraphReinforce, GraphPPO) provides `policy` (a StackedPolicy), `rollout_steps` (T), `trackables` (its
checkpoint content) and `learn(rollout) -> ({metric: [K]}, finite)`, traced into the program; the trainer
knows nothing else of it. The guard, the stop test, the end of the run and the export are shared with the
gymnasium trainer (`tfpg.training.loop.TrainingLoop`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfpg.backends.graph.collector import GraphCollector
from tfpg.core.checkpoint import TrainingCheckpoint, dataclass_arrays, load_dataclass_arrays
from tfpg.envs import make as envs_lib
from tfpg.envs.graph.core import make_key
from tfpg.models.policies import make_policy, policy_kind, snapshot_variables
from tfpg.training.evaluation import Evaluator
from tfpg.training.logger import RunLogger, write_json_atomically
from tfpg.training.loop import Agent, Progress, RunResult, TrainingLoop

# What the trainer logs for each agent besides the learner's metrics (the tags of a gymnasium run).
EPISODE_TAGS = ("reward", "reward_100", "episodes", "length_100", "steps_per_second", "nonfinite_updates")


@dataclass
class GraphProgress(Progress):
    """The trainer's counters (checkpointed field by field); env_steps are each agent's own."""

    env_steps: int = 0
    compile_seconds: float = 0.0


@dataclass
class Milestone:
    """When an agent first solved: env steps and training seconds (-1: not yet)."""

    solved_env_steps: int = -1
    solved_seconds: float = -1.0


class GraphAgent(Agent):
    """An agent of a graph run: also when it first solved."""

    def __init__(self, seed: int, config, run_dir: str, export_path: str | None, num_agents: int):
        super().__init__(seed, config, run_dir, export_path, num_agents)
        self.milestone = Milestone()

    def parts(self) -> dict:
        return {"episodes": self.stats, "milestone": self.milestone, "eval": self.evaluator.state}


class GraphTrainer(TrainingLoop):
    """Trains `algorithm`'s graph learner for K = config.num_seeds agents; `run()` returns the RunResult."""

    def __init__(self, algorithm, config, run_dir: str, export_path: str | None, resume: bool = False):
        super().__init__()
        keras.utils.set_random_seed(config.seed)
        self.config, self.run_dir, self.export_path = config, run_dir, export_path
        self.spaces = spaces = envs_lib.env_spaces(config.env_id)
        seeds = [config.seed + k for k in range(config.num_seeds)]
        kind = policy_kind(config.policy, spaces.action_space)
        self.template = make_policy(kind, spaces.observation_space, spaces.action_space, config.hidden, config.seed,
                                    False, config.activation, config.log_std_init)
        self.learner = algorithm.graph_learner(config, spaces, self.template, seeds)
        self.collector = GraphCollector(config.env_id, len(seeds), config.num_envs, [make_key(s) for s in seeds])
        self.program = self._compile_program()
        self.progress = GraphProgress(next_checkpoint=config.checkpoint_every)
        self.agents = [GraphAgent(s, config, run_dir, export_path, len(seeds)) for s in seeds]
        if len(seeds) > 1 and not resume:
            os.makedirs(run_dir, exist_ok=True)
            write_json_atomically(os.path.join(run_dir, "config.json"), config.to_dict())
        for k, agent in enumerate(self.agents):
            self._open_agent(k, agent, algorithm.loss_metric, resume)
        self._write_summaries = None   # the clock (_t0) starts after the first (compiling) call
        self.trackables = {**self.learner.trackables, **self.collector.trackables}
        self.checkpoint = TrainingCheckpoint(run_dir, self.trackables, self._checkpoint_arrays())
        if resume:
            self._resume()

    def _compile_program(self):
        """One iteration as one XLA-compiled tf.function: rollout of every agent, then its update.
        (XLA: ~12x the steps/s of the plain graph for CartPole, K = 1, N = 64, T = 64 on this CPU.)"""
        collector, learner, length = self.collector, self.learner, self.learner.rollout_steps

        # autograph=False: no Python control flow on tensors here (tf.scan, tf.cond, tf.map_fn are explicit), and
        # converting tfp and Keras code costs seconds of tracing.
        @tf.function(jit_compile=True, autograph=False)
        def iteration():
            rollout = collector.rollout(learner.policy, length)
            metrics, finite = learner.learn(rollout)
            self.metric_names = sorted(metrics)   # known once traced
            values = tf.stack([tf.cast(metrics[name], tf.float32) for name in self.metric_names])
            return values, finite, rollout.episode_returns, rollout.episode_lengths

        return iteration

    def _compile_summaries(self, names: list[str]):
        """One graph call writes every agent's scalars (eager tf.summary.scalar costs ~0.2 ms a value, more than
        a whole iteration of CartPole at K = 1): values [len(names), K] -> agent k's writer, every value (`_log`
        sends rows with NaN the eager way). No control flow in it: with one tf.cond per value (to skip NaN) the
        first call took 19 s of graph optimisation at K = 64 and each call ~25 ms of CPU; a while loop over
        each agent's non-NaN rows ~20 ms; the plain writes ~5 ms."""
        from tensorboard.plugins.scalar import metadata as scalar_metadata

        writers = [agent.logger.writer for agent in self.agents]
        # tf.summary.write, not tf.summary.scalar: the same tags and metadata as RunLogger.scalars writes.
        meta = scalar_metadata.create_summary_metadata(display_name=None, description=None).SerializeToString()

        @tf.function(input_signature=[tf.TensorSpec([], tf.int64), tf.TensorSpec([len(names), len(writers)])],
                     autograph=False)
        def write(step, values):
            for k, writer in enumerate(writers):
                with writer.as_default(step=step):
                    for i, name in enumerate(names):
                        tf.summary.write(name, values[i, k], metadata=meta)

        return write.get_concrete_function()

    def _open_agent(self, k: int, agent: GraphAgent, loss_metric: str, resume: bool) -> None:
        agent.logger = RunLogger(agent.run_dir, agent.config.to_dict(), self.config.total_steps,
                                 progress=self.config.progress and k == 0, append=resume,
                                 hparams=agent.config.hparams(), metrics=("reward_100", "eval/reward", loss_metric))
        self.learner.policy.load_agent(k)   # --export-best snapshots the initial policy
        agent.evaluator = Evaluator(agent.config, self.template.greedy_numpy,
                                    lambda: snapshot_variables(self.template), agent.logger.scalars)

    # --- checkpoint content ----------------------------------------------------------------------
    @property
    def env_steps(self) -> int:
        return self.progress.env_steps

    def _select(self, k: int):
        self.learner.policy.load_agent(k)
        return self.template

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"run/{k}": v for k, v in dataclass_arrays(self.progress).items()}
        arrays["run/train_seconds"] = np.float64(self.train_seconds)
        for agent in self.agents:
            for part, obj in agent.parts().items():
                arrays.update({f"seed_{agent.seed}/{part}/{k}": v for k, v in dataclass_arrays(obj).items()})
            for i, value in enumerate(agent.evaluator.best_variables or []):
                arrays[f"seed_{agent.seed}/best_variable_{i}"] = value
        return arrays

    def _resume(self) -> None:
        arrays = self.checkpoint.restore()

        def part(prefix):
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        load_dataclass_arrays(self.progress, part("run/"))
        self._seconds_before = float(arrays["run/train_seconds"])
        for agent in self.agents:
            for name, obj in agent.parts().items():
                load_dataclass_arrays(obj, part(f"seed_{agent.seed}/{name}/"))
            if agent.evaluator.best_variables is not None:
                agent.evaluator.best_variables = [arrays[f"seed_{agent.seed}/best_variable_{i}"]
                                                  for i in range(len(agent.evaluator.best_variables))]

    # --- the loop --------------------------------------------------------------------------------
    def _first_call(self) -> None:
        """The first iteration of this process: tracing and XLA compilation, and that iteration with its
        bookkeeping (the first call of the summary writer optimises its graph: seconds at K = 64), timed as
        compile_seconds."""
        t0 = time.perf_counter()
        out = self.program()
        tf.nest.map_structure(lambda x: x.numpy(), out)
        self._write_summaries = self._compile_summaries([*EPISODE_TAGS, *self.metric_names])
        self._after_iteration(*out)
        self.progress.compile_seconds += time.perf_counter() - t0

    def _loop(self) -> None:
        if self.should_stop():
            return
        if self._write_summaries is None:   # this process's first iteration: it compiles
            self._first_call()
        self._t0 = time.perf_counter()
        while not self.should_stop():
            self._after_iteration(*self.program())

    def _after_iteration(self, metrics, finite, episode_returns, episode_lengths) -> None:
        """metrics [M, K] (self.metric_names), episodes that ended [T, K, N] (length 0: none ended there)."""
        self._guard((bool(finite),))
        p = self.progress
        p.env_steps += self.config.num_envs * self.learner.rollout_steps
        p.updates += 1
        lengths, returns = episode_lengths.numpy(), episode_returns.numpy()
        seconds = self.train_seconds
        for k, agent in enumerate(self.agents):
            ended = lengths[:, k] > 0     # [T, N], time-major: episodes in the order they ended
            agent.stats.add(returns[:, k][ended], lengths[:, k][ended])
            if agent.milestone.solved_env_steps < 0 and self.solved(agent):
                agent.milestone.solved_env_steps, agent.milestone.solved_seconds = p.env_steps, seconds
        names = self.metric_names
        for k in range(len(self.agents)):   # evaluation, the stop test, the user's callbacks, the checkpoint
            self.after_iteration_callbacks(k, dict(env_steps=p.env_steps, updated=True),
                                           lambda k=k: dict(zip(names, metrics.numpy()[:, k].tolist())))
        self._log(metrics, self._episode_stats(seconds))

    def _episode_stats(self, seconds: float) -> np.ndarray:
        """EPISODE_TAGS x K: what each agent logs besides the learner's metrics."""
        p, stats = self.progress, np.empty((len(EPISODE_TAGS), len(self.agents)), np.float32)
        for k, agent in enumerate(self.agents):
            s = agent.stats
            stats[:, k] = (s.last_return, s.reward_100, s.episodes, s.length_100,
                           p.env_steps / seconds if seconds > 0 else 0.0, p.nonfinite_updates)
        return stats

    def _log(self, metrics, episode_stats: np.ndarray) -> None:
        steps = self.progress.env_steps
        values = np.concatenate([episode_stats, metrics.numpy()])
        if np.isnan(values).any():   # e.g. before the first episode ended: RunLogger.scalars skips NaN
            names = [*EPISODE_TAGS, *self.metric_names]
            for k, agent in enumerate(self.agents):
                agent.logger.scalars(steps, dict(zip(names, values[:, k])))
        else:
            self._write_summaries(tf.constant(steps, tf.int64), tf.constant(values))
        stats = self.agents[0].stats
        self.agents[0].logger.progress(steps, stats.reward_100, episode_stats[4, 0] * len(self.agents))

    # --- the end ---------------------------------------------------------------------------------
    def _summary_fields(self, agent: GraphAgent | None) -> dict:
        return {"compile_seconds": self.progress.compile_seconds, "backend": "graph", "num_seeds": len(self.agents),
                **({} if agent is None else dataclasses.asdict(agent.milestone))}

    def _overall(self, results: list[RunResult], seconds: float) -> RunResult:
        """One agent: its result. Several: every agent's steps, the median reward_100, solved if all solved
        (RUN_DIR/summary.json, with each agent's milestone)."""
        if len(results) == 1:
            return results[0]
        run = self._run_result(results, seconds)
        self._write_summary(self.run_dir, run, **self._summary_fields(None), per_agent=[
            dict(seed=a.seed, **dataclasses.asdict(a.milestone), reward_100=r.reward_100, solved=r.solved)
            for a, r in zip(self.agents, results)])
        return run

    def _run_result(self, results: list[RunResult], seconds: float) -> RunResult:
        """The whole run for the command line: every agent's steps, the median reward_100, solved if all solved."""
        finite = [r.reward_100 for r in results if not math.isnan(r.reward_100)]
        return RunResult(self.run_dir, self.export_path, sum(r.env_steps for r in results),
                         sum(r.episodes for r in results), statistics.median(finite) if finite else math.nan,
                         all(r.solved for r in results), seconds, self.signals.received)
