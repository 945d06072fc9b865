"""The graph backend's collector: K x N envs of `tfpg.envs.graph` stepped for T steps inside one compiled call.

The carried state (env physics, episode counters, the observation to act on, the agents' keys) lives in
`tf.Variable`s: a checkpoint holds it, and a resumed run continues bit for bit. Each agent's envs reset
from that agent's own key only (see `tfpg.backends.graph.stacked` for the stacked agents).
"""
from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfpg.backends.graph.stacked import StackedPolicy
from tfpg.envs import graph as graph_envs
from tfpg.envs.graph.core import RNG_ALG, EnvState


def per_agent_resets(env, num_agents: int, num_envs: int):
    """A copy of `env` stepping a flat batch of K x N envs whose `step` takes K keys [K, 2]: agent k's envs
    that end are reset from key k, exactly as `env.step` on agent k's N envs alone would reset them."""
    base = type(env)

    class PerAgentResets(base):
        def reset_physics(self, done, keys):
            rows = tf.map_fn(lambda a: base.reset_physics(self, a[0], a[1]),
                             (tf.reshape(done, [num_agents, num_envs]), keys), fn_output_signature=self.dtype)
            return tf.reshape(rows, [num_agents * num_envs, -1])

    return PerAgentResets(env.dtype)


class Rollout(NamedTuple):
    """T steps of N envs for K agents, time-major [T, K, N, ...]."""

    obs: tf.Tensor           # what each action was taken on
    actions: tf.Tensor       # as sampled (Gaussian: unclipped, the log-prob's argument)
    rewards: tf.Tensor
    terminated: tf.Tensor
    truncated: tf.Tensor
    final_obs: tf.Tensor     # s' of each transition (the episode's last observation where one ended)
    last_obs: tf.Tensor      # [K, N, obs]: what follows the rollout
    episode_returns: tf.Tensor   # undiscounted return of the episode that ended at this step (else 0)
    episode_lengths: tf.Tensor   # its length (else 0)


class GraphCollector:
    """K x N in-graph envs and their carried state in variables; `rollout(policy, T)` runs T steps in-graph."""

    def __init__(self, env_id: str, num_agents: int, num_envs: int, agent_keys: list[tf.Tensor]):
        self.env = graph_envs.make(env_id)
        self.flat_env = per_agent_resets(self.env, num_agents, num_envs)
        self.num_agents, self.num_envs = num_agents, num_envs
        starts, keys = [], []
        for key in agent_keys:
            reset_key, run_key = graph_envs.split_key(key)
            starts.append(self.env.reset(reset_key, num_envs))
            keys.append(run_key)
        self.physics = tf.Variable(tf.stack([s.physics for s, _ in starts]), name="env_physics")
        self.steps = tf.Variable(tf.stack([s.steps for s, _ in starts]), name="env_steps")
        self.obs = tf.Variable(tf.stack([o for _, o in starts]), name="env_obs")
        shape = [num_agents, num_envs]
        self.episode_return = tf.Variable(tf.zeros(shape), name="episode_return")
        self.episode_length = tf.Variable(tf.zeros(shape, tf.int32), name="episode_length")
        self.keys = tf.Variable(tf.stack(keys), name="agent_keys")

    @property
    def trackables(self) -> dict:
        return {"env_physics": self.physics, "env_steps": self.steps, "env_obs": self.obs,
                "episode_return": self.episode_return, "episode_length": self.episode_length,
                "agent_keys": self.keys}

    def next_keys(self, length: int) -> tf.Tensor:
        """[length, K, 2, 2] keys: per step and agent a sampling key and a reset key, each agent's from its own
        key, which moves on (in-graph)."""
        split = tf.map_fn(lambda key: tf.random.split(key, 2 * length + 1, alg=RNG_ALG), self.keys)
        self.keys.assign(split[:, 0])
        return tf.transpose(tf.reshape(split[:, 1:], [self.num_agents, length, 2, 2]), [1, 0, 2, 3])

    def _batched_step(self, policy, params, physics, steps, keys):
        """One step of every agent: the physics of all K x N envs as one flat batch, the random draws (the
        policy's sample, the resets) agent by agent from its own key. (Faster than a tf.map_fn of whole
        agent steps: 523 against 811 ms per iteration at K = 64, N = 64, T = 64, the same numbers.)"""
        action = tf.map_fn(lambda a: policy.distribution(a[0]).sample(seed=a[1]), (params, keys[:, 0]),
                           fn_output_signature=policy.template.action_spec.dtype)
        k, n = self.num_agents, self.num_envs

        def flat(x):
            return tf.reshape(x, [k * n, *x.shape[2:]])

        def unflat(x):
            return tf.reshape(x, [k, n, *x.shape[1:]])

        out = self.flat_env.step(EnvState(flat(physics), flat(steps)), flat(policy.template.clip_action(action)),
                                 keys[:, 1])
        return (action, *map(unflat, (out.state.physics, out.state.steps, out.obs, out.reward, out.terminated,
                                      out.truncated, out.final_obs)))

    def rollout(self, policy: StackedPolicy, length: int) -> Rollout:
        """T = `length` steps of every agent's envs; the carried state variables move on."""
        keys = self.next_keys(length)

        def step(carry, step_keys):
            physics, steps, obs, ep_return, ep_length = carry[:5]
            params = policy.params(obs)
            action, physics, steps, next_obs, reward, terminated, truncated, final_obs = self._batched_step(
                policy, params, physics, steps, step_keys)
            done = terminated | truncated
            ep_return, ep_length = ep_return + reward, ep_length + 1
            ended_return = tf.where(done, ep_return, 0.0)
            ended_length = tf.where(done, ep_length, 0)
            ep_return, ep_length = tf.where(done, 0.0, ep_return), tf.where(done, 0, ep_length)
            return (physics, steps, next_obs, ep_return, ep_length, obs, action, reward, terminated, truncated,
                    final_obs, ended_return, ended_length)

        start = (self.physics.value(), self.steps.value(), self.obs.value(), self.episode_return.value(),
                 self.episode_length.value())
        k_n = [self.num_agents, self.num_envs]
        template = policy.template
        initial = (*start, tf.zeros_like(start[2]), tf.zeros(k_n + list(template.action_shape), template.action_dtype),
                   tf.zeros(k_n), tf.zeros(k_n, tf.bool), tf.zeros(k_n, tf.bool), tf.zeros_like(start[2]),
                   tf.zeros(k_n), tf.zeros(k_n, tf.int32))
        out = tf.scan(step, keys, initializer=initial)
        for variable, value in zip((self.physics, self.steps, self.obs, self.episode_return, self.episode_length),
                                   out[:5]):
            variable.assign(value[-1])
        return Rollout(*out[5:11], last_obs=out[2][-1], episode_returns=out[11], episode_lengths=out[12])
