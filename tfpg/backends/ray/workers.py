"""Rollout workers on Ray (--workers N): each a Ray actor with its own vector env and a CPU copy of the policy.

    learner (the trainer's process)                      worker i (a Ray actor, its own process)
    weights = ray.put(policy variables as numpy)  ───►   copy them into its policy
    on-policy: collect(share of the request) on every ─►  the algorithm's own collector on its envs
               batch = the segments in worker order  ◄──  segment: batch, env steps, episodes, seconds
    replay:    stream(K vector steps, epsilon)  ──────►   epsilon-greedy steps; one chunk per call
               queue.get() ◄── bounded ray.util.queue.Queue ◄── put (blocks while the queue is full)

Seeding: worker i seeds its envs and its acting generators with worker_seed(seed, i), worker 0
with the run's seed itself, so `--workers 1` collects exactly what the in-process collector would.
A checkpoint re-seeds worker i with worker_seed(env_reset_seed(seed, env_steps), i), which a
resumed run repeats; the checkpoint needs nothing more than the seed and the step count it holds.

Start: the workers are placed as one placement group of one-CPU bundles, spread over the nodes, within
PLACEMENT_TIMEOUT_S (a cluster without enough free CPUs is one line, not a wait for ever); `checks.check_cpus`
refused, before anything was written, more workers than a Ray instance on this machine has CPUs. On such an
instance the workers get the learner's sys.path as their PYTHONPATH, so what imports here imports there (the
module of a "module:EnvId" id, tfpg itself); an env given from Python reaches them as its pickled factory. A
worker that cannot build its algorithm or envs says why in one line (`start_error`).

Faults: the actors restart when their process dies (max_restarts=-1) and their calls are never
retried by Ray (max_task_retries=0). A segment is one call's return value (or one queue item), so
it arrives whole or not at all: a dead worker's unfinished segment is dropped, the worker is
re-seeded (a fresh seed: it must not replay its first episodes) and asked again. Env steps and
episodes are counted only from segments the learner received. The workers ignore SIGINT: the
learner finishes its update, then stops them.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import random
import signal
import sys
import time
import types

import numpy as np

from tfpg.core.errors import ConfigError, TrainingError, one_line
from tfpg.envs import make as envs_lib
from tfpg.envs import python_envs
from tfpg.envs.stepping import VecStepper

# tfpg.models (TensorFlow) is imported inside the functions that use it: a worker process imports this module to
# build its actor, and imports TensorFlow only after its quiet start-up and after the env's module was found.

# How often one segment's call may fail (its worker's process died), and how many restarts in all, before the
# run gives up.
MAX_ATTEMPTS = 5
MAX_RESTARTS = 100
# Seconds to wait for Ray to restart a dead worker.
RESTART_TIMEOUT_S = 300.0
# Seconds to wait for Ray to find a CPU for every worker (a cluster's nodes may be busy or still joining).
PLACEMENT_TIMEOUT_S = 60.0
# Replay streaming: vector steps per chunk (at least --train-freq) and chunks the queue holds.
MIN_CHUNK_STEPS = 16
QUEUE_CHUNKS_PER_WORKER = 2


def worker_seed(seed: int, index: int) -> int:
    """Worker 0: `seed` itself (--workers 1 is the in-process run); worker i > 0: a seed drawn from (seed, i)."""
    if index == 0:
        return int(seed)
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] % (2**31))


def restart_seed(seed: int, env_steps: int, restarts: int) -> int:
    """The seed a restarted worker continues with: new for every restart, so no episode is replayed."""
    return int(np.random.SeedSequence([seed, env_steps, restarts, 1]).generate_state(1)[0] % (2**31))


def class_path(cls: type) -> str:
    """"module:QualName" of a class, for a worker to import it by name (after TensorFlow's quiet start-up)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str) -> type:
    """The class `class_path` named: the algorithm a worker builds its actor from (a built-in or a user's own,
    from any module the worker can import), without the learner's registry."""
    module, _, name = path.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def config_from_values(algorithm: type, values: dict):
    """The config object of `RunConfig.to_dict()` output (lists back to tuples)."""
    return algorithm.config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def start_error(env_id: str, index: int | str, error: str) -> str:
    """The one line of a worker that could not build its algorithm or envs: what it said, and what every worker
    needs."""
    module, sep, _ = env_id.partition(":")
    if sep:
        needs = f"the module {module} of --env {env_id} must be importable on every worker"
    elif python_envs.is_python_env_id(env_id):
        needs = f"the module of the env factory {env_id[len(python_envs.PREFIX):]} must be importable on every worker"
    else:
        needs = f"tfpg, Ray and the packages of {env_id} must be importable on every worker"
    return f"rollout worker {index} could not start ({error}): {needs}: install it there or put its folder on PYTHONPATH"


class RolloutWorker:
    """One Ray actor: its own vector env with the stepping core, and the algorithm's `actor` built on it.

    What fails while building them is kept as one line for `info()` (the learner ends the run with it) rather
    than raised, which Ray would hand back as its own multi-line traceback."""

    def __init__(self, algorithm_path: str, config_values: dict, index: int, envs_per_worker: int, seed: int,
                 env_factory: bytes | None = None):
        """`env_factory`: with a python/... env id, the factory registered under it, pickled by the learner."""
        # Ctrl-C in a terminal reaches the whole process group; the learner decides when the workers stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.index = index
        self.error = None
        try:
            self._build(algorithm_path, config_values, envs_per_worker, seed, env_factory)
        except Exception as e:
            self.error = f"{type(e).__name__}: {one_line(e)}"

    def _build(self, algorithm_path: str, config_values: dict, envs_per_worker: int, seed: int,
               env_factory: bytes | None) -> None:
        from tfpg.core.quiet import import_tensorflow

        # The env's own module first: one that cannot be imported here is reported in seconds, with its own
        # ImportError, not after TensorFlow's start-up.
        module, sep, _ = config_values["env_id"].partition(":")
        if sep:
            importlib.import_module(module)
        if env_factory is not None:
            from ray import cloudpickle

            python_envs.register_python_env(cloudpickle.loads(env_factory), config_values["env_id"])
        import_tensorflow()
        algorithm = import_class(algorithm_path)
        config = dataclasses.replace(config_from_values(algorithm, config_values), num_envs=envs_per_worker, seed=seed)
        self.episodes: list[tuple[np.ndarray, np.ndarray]] = []
        self.envs = envs_lib.make_train_envs(config)
        self.stepper = VecStepper(self.envs, config.env_id, on_episode=lambda r, n: self.episodes.append((r, n)))
        self.actor = algorithm.actor(config, envs_lib.env_spaces(config.env_id, config.env_kwargs), self.stepper)

    def info(self) -> dict:
        """Where it runs, and why it could not start (None once it did)."""
        import ray

        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "error": self.error}

    def reseed(self, seed: int) -> None:
        """Re-seed envs and acting; episodes in progress end here (as after a checkpoint in process)."""
        self.stepper.restart(seed)
        self.actor.reseed(seed)
        self.episodes = []

    def _segment(self, batch, env_steps_before: int, started: float) -> dict:
        returns = [r for r, _ in self.episodes]
        lengths = [n for _, n in self.episodes]
        self.episodes = []
        return {"worker": self.index, "batch": batch, "env_steps": self.stepper.env_steps - env_steps_before,
                "returns": np.concatenate(returns) if returns else np.zeros(0),
                "lengths": np.concatenate(lengths) if lengths else np.zeros(0, np.int64),
                "seconds": time.perf_counter() - started}

    def collect(self, weights: list[np.ndarray], request: dict) -> dict:
        """One on-policy segment: the actor's collector serves `request` with the broadcast weights."""
        from tfpg.models.policies import restore_variables

        restore_variables(self.actor.policy, weights)
        before, started = self.stepper.env_steps, time.perf_counter()
        return self._segment(self.actor.collector.collect(**request), before, started)

    def stream(self, weights: list[np.ndarray], request: dict, vector_steps: int, queue) -> int:
        """One replay chunk of `vector_steps` vector steps, put into the learner's bounded queue."""
        from tfpg.models.policies import restore_variables

        restore_variables(self.actor.policy, weights)
        before, started = self.stepper.env_steps, time.perf_counter()
        segment = self._segment(self.actor.collector.collect(vector_steps=vector_steps, **request), before, started)
        queue.put(segment)   # blocks while the queue is full: the learner sets the pace
        return segment["env_steps"]


def require_ray():
    import ray

    return ray


def start_ray(config) -> bool:
    """Join --ray-address, or start a local Ray instance (no dashboard); True when this run connected (then
    `ray.shutdown()` at its end stops the local instance, or leaves the cluster running and disconnects).

    ray.init draws from Python's global `random`, which Keras's unseeded initializers also draw from
    after the trainer seeded it: its state is put back, so a run's weights do not depend on whether
    this process connected to Ray itself."""
    ray = require_ray()
    if ray.is_initialized():   # e.g. a test session that already holds one
        return False
    quiet = dict(log_to_driver=False, logging_level=logging.WARNING)
    state = random.getstate(), np.random.get_state()
    try:
        if config.ray_address is not None:
            ray.init(address=config.ray_address, **quiet)
        else:
            ray.init(num_cpus=config.ray_num_cpus or None, include_dashboard=False, **quiet)
        return True
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])


def place_workers(ray, n: int):
    """A placement group of `n` one-CPU bundles spread over the nodes (one worker per node as far as nodes go),
    once Ray placed it; ConfigError when it could not within PLACEMENT_TIMEOUT_S."""
    from ray.util.placement_group import placement_group, remove_placement_group

    group = placement_group([{"CPU": 1}] * n, strategy="SPREAD")
    if ray.wait([group.ready()], timeout=PLACEMENT_TIMEOUT_S)[0]:
        return group
    remove_placement_group(group)
    total, free = ray.cluster_resources().get("CPU", 0.0), ray.available_resources().get("CPU", 0.0)
    raise ConfigError(f"Ray found no CPU for {n} rollout workers (one each) within {PLACEMENT_TIMEOUT_S:g} s: its "
                      f"nodes have {total:g} CPUs, {free:g} free; use fewer --workers, or add nodes or free CPUs "
                      "(see `ray status`)")


def learner_paths(config) -> dict | None:
    """On a Ray instance of this machine (no --ray-address), the workers' runtime_env: the learner's sys.path as
    their PYTHONPATH, so that a module importing here (an env's, an algorithm's, tfpg itself, in the same copy)
    imports the same way there. A cluster's nodes have paths of their own: there it must be installed."""
    if config.ray_address is not None:
        return None
    paths = dict.fromkeys(os.path.abspath(path or os.curdir) for path in sys.path)   # "" is the current folder
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}


class PooledStepper:
    """The learner's stepper with --workers: it counts env steps and episodes of the segments received and
    re-seeds the workers; the envs themselves live on the workers (`step` is not available here)."""

    def __init__(self, pool: WorkerPool, spaces: envs_lib.EnvSpaces, num_envs: int, on_episode):
        self.pool = pool
        # What collectors read of a vector env when they are built (the algorithm's own, replaced by the pool).
        self.envs = types.SimpleNamespace(single_observation_space=spaces.observation_space,
                                          single_action_space=spaces.action_space, num_envs=num_envs)
        self.num_envs = num_envs
        self.on_episode = on_episode
        self.on_restart: list = []
        # callbacks(columns: slice) when one worker's envs restart (its process died): its episodes were cut
        self.on_worker_restart: list = []
        self.env_steps = 0
        self.observations = None

    def restart(self, seed: int) -> None:
        self.pool.reseed(seed)
        for callback in self.on_restart:
            callback()

    def step(self, actions, env_actions=None):
        raise RuntimeError("with --workers the envs are stepped on the workers; collect through algorithm.collector")


@dataclasses.dataclass
class PoolTimes:
    """What the learner spent on the workers since the last log (TensorBoard's workers/ tags)."""

    wait_seconds: float = 0.0         # blocked on segments
    broadcast_seconds: float = 0.0    # snapshot + ray.put of the weights
    broadcasts: int = 0
    updates: int = 0


class WorkerPool:
    """N rollout workers, the weights they act with, and the bookkeeping of what they hand back."""

    def __init__(self, algorithm: type, config, spaces: envs_lib.EnvSpaces, on_episode):
        """`algorithm`: the class whose `actor` each worker builds (a `tfpg.algos.capabilities.Distributable`)."""
        from tfpg.backends.ray.checks import pickled_env_factory

        ray = require_ray()
        self.config = config
        env_factory = pickled_env_factory(config.env_id)   # before Ray starts: refused in one line
        self.connected = start_ray(config)
        self.group = None
        try:
            self.group = place_workers(ray, config.workers)
            self._start_actors(ray, class_path(algorithm), config, spaces, on_episode, env_factory)
        except BaseException:
            self._release(ray)
            raise

    def _start_actors(self, ray, algorithm_path: str, config, spaces, on_episode, env_factory) -> None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self.n, self.m = config.workers, config.envs_per_worker or config.num_envs
        remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(RolloutWorker)
        values = config.to_dict()
        self.actors = [remote.options(scheduling_strategy=PlacementGroupSchedulingStrategy(self.group, i),
                                      runtime_env=learner_paths(config))
                       .remote(algorithm_path, values, i, self.m, worker_seed(config.seed, i), env_factory)
                       for i in range(self.n)]
        # Read in attach(): the workers start (a process and a TensorFlow import each) while the learner builds
        # its algorithm, and an error in a worker's construction still ends the run before anything is collected.
        self._placement_refs = [a.info.remote() for a in self.actors]
        self.placement: list[dict] = []
        self.stepper = PooledStepper(self, spaces, self.n * self.m, on_episode)
        self.restarts = [0] * self.n
        self.worker_steps = np.zeros(self.n, dtype=np.int64)        # since the last log
        self.worker_seconds = np.zeros(self.n)
        self.times = PoolTimes()
        self.broadcast_bytes = 0
        self.weights = None          # the ObjectRef of the newest broadcast
        self.stale = True            # the policy changed since
        self.collector = None

    # --- wiring ---------------------------------------------------------------------------------
    def attach(self, algorithm) -> None:
        """Put the stand-in collector in place of the algorithm's own (same collect(), same batches)."""
        self.placement = self._started()
        local = algorithm.collector
        self.worker_request = algorithm.worker_request
        if type(local).streams:
            self.collector = StreamingCollector(self, algorithm.policy, type(local))
        else:
            self.collector = SyncCollector(self, algorithm.policy, type(local))
        algorithm.collector = self.collector

    def _started(self) -> list[dict]:
        """Every worker's `info()` once it built its algorithm and envs; ConfigError with the first that could not."""
        ray = require_ray()
        from ray.exceptions import RayError

        infos = []
        for i, ref in enumerate(self._placement_refs):
            try:
                infos.append(ray.get(ref))
            except RayError as e:   # its process died while starting, or Ray could not set it up
                raise ConfigError(start_error(self.config.env_id, i, one_line(e))) from None
            if infos[-1]["error"] is not None:
                raise ConfigError(start_error(self.config.env_id, i, infos[-1]["error"]))
        return infos

    def policy_updated(self) -> None:
        self.stale = True
        self.times.updates += 1

    def broadcast(self, policy):
        """One ray.put of the policy's variables as numpy arrays, once per update (a fresh ref when stale)."""
        if self.stale or self.weights is None:
            from tfpg.models.policies import snapshot_variables

            started = time.perf_counter()
            arrays = snapshot_variables(policy)
            self.weights = require_ray().put(arrays)
            self.times.broadcast_seconds += time.perf_counter() - started
            self.times.broadcasts += 1
            self.broadcast_bytes = sum(a.nbytes for a in arrays)
            self.stale = False
        return self.weights

    # --- segments -------------------------------------------------------------------------------
    def account(self, segment: dict) -> None:
        """Count a received segment: env steps, episode statistics, the worker's own rate."""
        self.stepper.env_steps += segment["env_steps"]
        if len(segment["returns"]):
            self.stepper.on_episode(segment["returns"], segment["lengths"])
        self.worker_steps[segment["worker"]] += segment["env_steps"]
        self.worker_seconds[segment["worker"]] += segment["seconds"]

    def recover(self, index: int) -> None:
        """After worker `index`'s process died: wait for Ray's restart, then re-seed it afresh."""
        ray = require_ray()
        from ray.exceptions import RayActorError

        self.restarts[index] += 1
        if sum(self.restarts) > MAX_RESTARTS:
            raise TrainingError(f"rollout workers died {sum(self.restarts)} times; see `ray status`")
        seed = worker_seed(restart_seed(self.config.seed, self.stepper.env_steps, sum(self.restarts)), index)
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while True:
            try:
                ray.get(self.actors[index].reseed.remote(seed))
                break
            except RayActorError:
                if time.monotonic() > deadline:
                    raise TrainingError(f"rollout worker {index} died and was not restarted within "
                                        f"{RESTART_TIMEOUT_S:.0f} s; see `ray status`") from None
                time.sleep(0.2)
        self.placement[index] = ray.get(self.actors[index].info.remote())
        for callback in self.stepper.on_worker_restart:
            callback(slice(index * self.m, (index + 1) * self.m))   # its columns of the joined rollouts

    def gather(self, weights, requests: list[dict]) -> list[dict]:
        """Every worker's segment for its request, in worker order; a worker that died is asked again."""
        ray = require_ray()
        from ray.exceptions import RayActorError

        refs = [actor.collect.remote(weights, request) for actor, request in zip(self.actors, requests)]
        segments = []
        for i, ref in enumerate(refs):
            for _ in range(MAX_ATTEMPTS):
                try:
                    segments.append(ray.get(ref))
                    break
                except RayActorError:   # its unfinished segment is gone: collect it again
                    self.recover(i)
                    ref = self.actors[i].collect.remote(weights, requests[i])
            else:
                        raise TrainingError(f"rollout worker {i} died {MAX_ATTEMPTS} times while collecting one segment")
        return segments

    def reseed(self, seed: int) -> None:
        """After a checkpoint (and on resume): worker i restarts its envs and acting from worker_seed(seed, i)."""
        ray = require_ray()
        from ray.exceptions import RayActorError

        if self.collector is not None:
            self.collector.drain()
        refs = [actor.reseed.remote(worker_seed(seed, i)) for i, actor in enumerate(self.actors)]
        for i, ref in enumerate(refs):
            try:
                ray.get(ref)
            except RayActorError:   # died meanwhile: its replacement gets a fresh seed like any restart
                self.recover(i)

    # --- reporting and the end --------------------------------------------------------------------
    def metrics(self) -> dict:
        """workers/steps_per_second_i, the learner's wait for data and the broadcast time per update, since
        the last log."""
        times, updates = self.times, max(1, self.times.updates)
        rates = {f"workers/steps_per_second_{i}": self.worker_steps[i] / self.worker_seconds[i]
                 for i in range(self.n) if self.worker_seconds[i] > 0}
        values = {**rates, "workers/learner_wait_s": times.wait_seconds / updates,
                  "workers/broadcast_s": times.broadcast_seconds / max(1, times.broadcasts),
                  "workers/broadcast_bytes": self.broadcast_bytes, "workers/restarts": sum(self.restarts)}
        self.worker_steps[:], self.worker_seconds[:] = 0, 0.0
        self.times = PoolTimes()
        return values

    def summary(self) -> dict:
        return {"count": self.n, "envs_per_worker": self.m, "restarts": list(self.restarts),
                "nodes": [p["node"] for p in self.placement], "broadcast_bytes": self.broadcast_bytes}


    def summary_fields(self) -> dict:
        """What summary.json says of the workers (`tfpg.training.trainer.Trainer` writes it)."""
        return {"workers": self.summary()}
    def close(self) -> None:
        """Stop the workers (and the queue); disconnect from Ray if this run connected (a local instance stops)."""
        ray = require_ray()
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        if self.collector is not None:
            self.collector.close()
        self._release(ray)

    def _release(self, ray) -> None:
        """Give the workers' CPUs back to Ray (a shared instance or cluster goes on); stop a local instance."""
        if self.group is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self.group)
            self.group = None
        if self.connected:
            ray.shutdown()
            self.connected = False


class SyncCollector:
    """On-policy collection on every worker at once: the batch is the workers' batches in worker order."""

    def __init__(self, pool: WorkerPool, policy, local_class):
        self.pool, self.policy, self.local_class = pool, policy, local_class

    def collect(self, **request):
        pool = self.pool
        weights = pool.broadcast(self.policy)
        share = self.local_class.split_request(request, pool.n)
        started = time.perf_counter()
        segments = pool.gather(weights, [pool.worker_request(share, i, pool.n) for i in range(pool.n)])
        pool.times.wait_seconds += time.perf_counter() - started
        for segment in segments:
            pool.account(segment)
        return type(segments[0]["batch"]).concatenate([s["batch"] for s in segments])

    def drain(self) -> None:
        """Nothing is in flight between two collect() calls."""

    def close(self) -> None:
        pass


class StreamingCollector:
    """Replay collection: each worker streams chunks into a bounded queue; collect() hands back one chunk.

    A worker gets its next stream call (with the newest weights and the request, e.g. the run's epsilon)
    as soon as its last one returned, so it never runs more than the queue's room ahead of the learner."""

    def __init__(self, pool: WorkerPool, policy, local_class):
        from ray.util.queue import Queue

        self.pool, self.policy = pool, policy
        self.chunk_steps = max(MIN_CHUNK_STEPS, getattr(pool.config, "train_freq", 1))
        self.queue = Queue(maxsize=QUEUE_CHUNKS_PER_WORKER * pool.n)
        self.in_flight: dict[int, object] = {}

    def _launch(self, request: dict) -> None:
        """A stream call for every worker that has none running (recovering those whose process died)."""
        ray = require_ray()
        from ray.exceptions import RayActorError

        for i, actor in enumerate(self.pool.actors):
            ref = self.in_flight.get(i)
            if ref is not None:
                if not ray.wait([ref], timeout=0)[0]:
                    continue
                try:
                    ray.get(ref)
                except RayActorError:   # died before or while putting its chunk: nothing of it was counted
                    self.pool.recover(i)
            weights = self.pool.broadcast(self.policy)
            self.in_flight[i] = actor.stream.remote(weights, self.pool.worker_request(request, i, self.pool.n),
                                                    self.chunk_steps, self.queue)

    def collect(self, **request):
        from ray.util.queue import Empty

        started = time.perf_counter()
        while True:
            self._launch(request)
            try:
                segment = self.queue.get(block=True, timeout=1.0)
                break
            except Empty:
                continue
        self.pool.times.wait_seconds += time.perf_counter() - started
        self.pool.account(segment)
        chunk = segment["batch"]
        chunk.env_ids = chunk.env_ids + segment["worker"] * self.pool.m   # the learner's numbering of all envs
        return chunk

    def drain(self) -> None:
        """Let every running stream call finish and drop what they queued (never counted): a checkpoint
        re-seeds the workers, and chunks collected before it must not arrive after it."""
        ray = require_ray()
        from ray.util.queue import Empty

        pending = [ref for ref in self.in_flight.values()]
        while pending:
            try:
                self.queue.get(block=True, timeout=0.1)
            except Empty:
                pass
            pending = ray.wait(pending, num_returns=len(pending), timeout=0)[1]
        for ref in self.in_flight.values():
            try:
                ray.get(ref)
            except Exception:   # a worker that died meanwhile is recovered by the next launch
                pass
        self.in_flight = {}
        while not self.queue.empty():
            self.queue.get_nowait()

    def close(self) -> None:
        """After the workers were killed: collect their stream calls' errors (else Ray reports them), drop the queue."""
        ray = require_ray()
        for ref in self.in_flight.values():
            try:
                ray.get(ref)
            except Exception:   # killed while stepping or blocked on the full queue
                pass
        self.queue.shutdown(force=True)
