"""The graph backend (`--backend graph`): K agents with stacked weights, whose rollout and update are compiled
into one program.

For the envs of `tfpg.envs.graph` (classic control written as TensorFlow ops) one call of a
compiled `tf.function` does a whole iteration, with no Python per env step (the rollout:
`tfpg.backends.graph.collector`; the update: the algorithm's graph learner; the loop around the program:
`tfpg.training.graph_trainer`):

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
lives in `tf.Variable`s of the collector and the learner: a checkpoint holds it, and a resumed run continues
bit for bit.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


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


def per_agent_gradient_stats(grads) -> dict:
    """gradient_stats for each agent k of stacked gradients g_v [K, ...]: grad_l2 [K], grad_max [K], and the
    global norm ||g[k]||_2 [K] that --grad-clip bounds."""
    axes = [list(range(1, g.shape.rank)) for g in grads]
    rms = [tf.sqrt(tf.reduce_mean(tf.square(g), axis=a)) for g, a in zip(grads, axes)]
    return {"grad_l2": tf.add_n(rms) / len(rms),
            "grad_max": tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(g), axis=a) for g, a in zip(grads, axes)]), 0),
            "norm": tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g), axis=a) for g, a in zip(grads, axes)]))}


def clip_per_agent(grads, norms, clip: float):
    """tf.clip_by_global_norm for each agent: g[k] * clip / max(||g[k]||, clip)."""
    scale = clip / tf.maximum(norms, clip)
    return [g * tf.reshape(scale, [-1] + [1] * (g.shape.rank - 1)) for g in grads]


def apply_if_finite_per_agent(optimizer, losses, grads, variables, grad_clip: float):
    """`tfpg.maths.updates.apply_if_finite` for K stacked agents: agent k's gradients clipped to its own global
    norm (g[k] * c / max(||g[k]||, c)), and the step applied only if every loss [K] and gradient is finite
    (to all agents or none: they share one optimizer step). Returns whether it applied."""
    if grad_clip > 0:
        grads = clip_per_agent(grads, per_agent_gradient_stats(grads)["norm"], grad_clip)
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(x)) for x in [losses, *grads]])

    def apply():
        optimizer.apply_gradients(zip(grads, variables))
        return tf.constant(True)

    return tf.cond(finite, apply, lambda: tf.constant(False))


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
