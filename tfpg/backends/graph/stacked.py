"""The graph backend (`--backend graph`): rollout and update of K agents compiled into one program.

For the envs of `tfpg.envs.graph` (classic control written as TensorFlow ops) one call of a
compiled `tf.function` does a whole iteration, with no Python per env step:

    keys_k          <- split(key_k)                         per agent k, stateless (philox)
    rollout         T steps of N envs for each of K agents   (tf.scan over t; per step one batched
                    policy call on [K, N, obs], per agent a tfp sample with its own key, the physics of
                    all K x N envs at once, and the resets of each agent's ending envs from its own key)
    update          the algorithm's learner on the [K, T*N] batch (stacked weights, one Adam for all:
                    Adam is elementwise, so agent k's slice moves exactly as its own Adam would move it;
                    the gradients may be taken agent by agent, `per_agent_gradients`, for the cache)

K agents are K sets of weights stacked on a leading axis, `kernel_l [K, in, out]`: a layer is one
batched matmul `einsum('kbi,kio->kbo')`, the loss is the sum over agents of each agent's loss (its
gradient w.r.t. agent k's slice is agent k's own gradient), and each agent draws its random numbers
from its own key only, so agent k of a K-agent run follows the run with `--num-seeds 1 --seed s_k`.
Agent k's initial weights are those of the Keras models built after `keras.utils.set_random_seed(s_k)`.

The carried state (env physics, episode counters, the observation to act on, the agents' keys)
lives in `tf.Variable`s: a checkpoint holds it, and a resumed run continues bit for bit.
"""
from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfpg.envs import graph as graph_envs
from tfpg.envs.graph.core import RNG_ALG, EnvState


class StackedMLP:
    """K copies of one Keras MLP (Dense layers) as stacked variables, evaluated as one batched network.

        h_0 = x [K, B, in];  h_{l+1} = act_l(h_l @ W_l[k] + b_l[k]) for each agent k at once
    """

    def __init__(self, models: list[keras.Model], name: str):
        dense = [layer for layer in models[0].layers if isinstance(layer, keras.layers.Dense)]
        self.activations = [layer.activation for layer in dense]
        self.variables = []
        for layer in dense:
            for weight in ("kernel", "bias"):
                stacked = np.stack([getattr(m.get_layer(layer.name), weight).numpy() for m in models])
                self.variables.append(tf.Variable(stacked, name=f"{name}_{layer.name}_{weight}"))

    def __call__(self, x: tf.Tensor, weights=None) -> tf.Tensor:
        """x [K, B, in] with the stacked variables, or with `weights` in `variables` order: [K, ...] tensors, or one
        agent's slices with its x [B, in]."""
        weights = self.variables if weights is None else weights
        for i, activation in enumerate(self.activations):
            kernel, bias = weights[2 * i], weights[2 * i + 1]
            equation = "kbi,kio->kbo" if kernel.shape.rank == 3 else "bi,io->bo"
            x = activation(tf.einsum(equation, x, kernel) + bias[..., None, :])
        return x

    def time_major(self, x: tf.Tensor) -> tf.Tensor:
        """The network on a rollout's time-major [T, K, N, in] (or [K, N, in]) inputs, the same leading shape out."""
        if x.shape.rank == 3:
            return self(x)
        t, k, n = tf.unstack(tf.shape(x)[:3])
        flat = tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [k, t * n, -1])
        out = self(flat)
        return tf.transpose(tf.reshape(out, [k, t, n, -1]), [1, 0, 2, 3])

    def agent_weights(self, k: int) -> list[np.ndarray]:
        """Agent k's weights in Keras `model.weights` order (kernel, bias per layer)."""
        return [v[k].numpy() for v in self.variables]


class StackedPolicy:
    """K policies of the kind of `template` (a `tfpg.models.policies` policy): stacked network weights, and for a
    Gaussian a stacked log-std [K, A]. Distributions are the template's own tfp distributions, batched [K, B]."""

    def __init__(self, template, models: list[keras.Model], log_stds: list[np.ndarray] | None = None):
        self.template = template
        self.net = StackedMLP(models, "policy")
        self.log_std = None if log_stds is None else tf.Variable(np.stack(log_stds), name="policy_log_std")

    @property
    def variables(self) -> list[tf.Variable]:
        return self.net.variables + ([] if self.log_std is None else [self.log_std])

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("logits",) if self.log_std is None else ("mean", "log_std")

    def params(self, obs: tf.Tensor, weights=None) -> dict:
        """The distribution parameters for observations [K, B, obs]: {"logits"} or {"mean", "log_std"}; with
        `weights` (in `variables` order: [K, ...] tensors, or one agent's slices and its obs [B, obs])."""
        weights = self.variables if weights is None else weights
        out = self.net(obs, weights[:len(self.net.variables)])
        if self.log_std is None:
            return {"logits": out}
        return {"mean": out, "log_std": tf.broadcast_to(tf.expand_dims(weights[-1], -2), tf.shape(out))}

    def distribution(self, params: dict):
        return self.template.distribution_from_params(params)

    def load_agent(self, k: int) -> None:
        """Put agent k's weights into the template policy (for evaluation and export)."""
        self.template.model.set_weights(self.net.agent_weights(k))
        if self.log_std is not None:
            self.template.log_std.assign(self.log_std[k])


def fixed_horizon_advantages(rewards, values, terminated, truncated, bootstrap_values, last_values,
                             gamma: float, lam: float):
    """GAE(lambda) over a fixed-horizon rollout, time-major [T, ...] tensors (`tfpg.maths.returns.gae_advantages` in TF):

        V_next_t = values[t+1] inside an episode, bootstrap_values[t] at a truncation, last_values at t = T-1,
                   0 after a termination
        delta_t  = r_t + gamma V_next_t - V(s_t)
        A_t      = delta_t + gamma lambda (1 - done_t) A_{t+1},  A_T = 0;   returns G_t = A_t + V(s_t)

    With values = bootstrap = last = 0 and lambda = 1, G_t is the discounted reward-to-go cut at the end
    of the rollout. Returns (A, G)."""
    following = tf.concat([values[1:], last_values[None]], axis=0)
    next_values = tf.where(truncated, bootstrap_values, following)
    next_values = tf.where(terminated, tf.zeros_like(next_values), next_values)
    deltas = rewards + gamma * next_values - values
    continues = 1.0 - tf.cast(terminated | truncated, tf.float32)

    def backwards(advantage, inputs):
        delta, cont = inputs
        return delta + gamma * lam * cont * advantage

    advantages = tf.scan(backwards, (deltas, continues), initializer=tf.zeros_like(last_values), reverse=True)
    return advantages, advantages + values


def one_agent(fn, num_agents: int):
    """fn for a tf.map_fn over agents, given agent k's slices [...]: for K = 1 the slices as a stack of one [1, ...]
    and the results unstacked; fn must take both shapes. (With plain matmuls a K = 1 run left the float trajectory
    of the batched matmuls, bit-identical to it at K = 2: XLA seems to drop the one-step loop, and a matmul
    outside a loop sums in another order.)"""
    if num_agents > 1:
        return fn

    def stack_of_one(args):
        return tf.nest.map_structure(lambda x: x[0], fn(tf.nest.map_structure(lambda x: x[None], args)))

    return stack_of_one


def per_agent_gradients(loss_fn, variables, batch, aux_dtypes):
    """Agent by agent: for stacked variables theta [K, ...] and per-agent batches [K, B, ...],
    loss_fn(weights_k, batch_k) -> (loss_k, aux_k {name: tensor}); returns (d loss_k / d theta_k stacked [K, ...]
    per variable, loss [K], aux [K, ...]). That is the gradient of sum_k loss_k w.r.t. the stacked variables,
    taken one agent at a time (a tf.map_fn) so that its activations stay in cache: K = 64, B = 4,096, 64 hidden:
    30% less CPU than one batched pass over [K, B, 64], the same gradients bit for bit (see `one_agent`)."""
    def one(args):
        weights, data = args
        with tf.GradientTape() as tape:
            tape.watch(weights)
            loss, aux = loss_fn(weights, data)
        return tape.gradient(loss, weights), loss, aux

    signature = ([v.dtype for v in variables], tf.float32, aux_dtypes)
    return tf.map_fn(one_agent(one, variables[0].shape[0]), ([v.value() for v in variables], batch),
                     fn_output_signature=signature)


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


def agent_major(x: tf.Tensor) -> tf.Tensor:
    """[T, K, N, ...] -> [K, T*N, ...]: each agent's batch, time-major within it."""
    x = tf.experimental.numpy.moveaxis(x, 1, 0)
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([shape[:1], [shape[1] * shape[2]], shape[3:]], axis=0))


def refusal_line(algo: str, unsupported) -> str | None:
    """The one line refusing every option of `unsupported` [(is_refused, flag, fix)] that is refused, or None:
    all of them at once, since a config without a preset can trip several."""
    refused = [(flag, fix) for is_refused, flag, fix in unsupported if is_refused]
    if not refused:
        return None
    return (f"--backend graph does not implement {', '.join(flag for flag, _ in refused)} for --algo {algo}; use "
            f"{', '.join(fix for _, fix in refused)}, or --backend gym")
