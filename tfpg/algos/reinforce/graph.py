"""REINFORCE on the graph backend (`--backend graph`): the learner of K stacked agents and what it refuses."""
from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.algos.reinforce.config import ReinforceConfig
from tfpg.backends.graph.stacked import (
    StackedMLP,
    StackedPolicy,
    agent_major,
    clip_per_agent,
    one_agent,
    per_agent_gradient_stats,
    per_agent_gradients,
    refusal_line,
)
from tfpg.maths.returns import gae_advantages
from tfpg.models.networks import mlp, torso_for

tfd = tfp.distributions


# --- the graph backend (--backend graph): fixed-horizon rollouts of K stacked agents -------------------------
def graph_refusal(config: ReinforceConfig) -> str | None:
    """The options `--backend graph` does not implement for REINFORCE, as a one-line refusal; None if all are.

    Implemented: --returns reward_to_go / lambda, --baseline none / critic, --update batch, --normalize,
    --entropy-beta, --grad-clip, --critic-*, both policies. The batch is --num-envs x --rollout-steps
    transitions (--episodes-per-update and --steps-per-update are for --backend gym)."""
    # all of them in one line: the fallback defaults (no preset) trip several at once
    return refusal_line("reinforce", (
        (config.returns not in ("reward_to_go", "lambda"), f"--returns {config.returns}", "--returns reward_to_go or lambda"),
        (config.baseline not in ("none", "critic"), f"--baseline {config.baseline}", "--baseline none or critic"),
        (config.update != "batch", f"--update {config.update}", "--update batch"),
        (config.reuse_epochs != 1, "--reuse-epochs", "--reuse-epochs 1"),
        (config.normalize_obs, "--normalize-obs", "--normalize-obs false"),
        (config.normalize_reward, "--normalize-reward", "--normalize-reward false"),
        (bool(config.std_ceiling), "--std-ceiling", "--std-ceiling 0"),
        (bool(config.log_std_lr), "--log-std-lr", "--log-std-lr 0"),
        (bool(config.target_kl) or config.kl_adaptive_lr, "--target-kl / --kl-adaptive-lr",
         "--target-kl 0 --kl-adaptive-lr false"),
        (bool(config.grad_var_every), "--grad-var-every", "--grad-var-every 0"),
    ))


class GraphReinforce:
    """The REINFORCE learner of the graph backend, for K agents with stacked weights (`tfpg.backends.graph.stacked`).

    On a rollout [T, K, N]: V from the critic (fitted on earlier batches; 0 without one), then
        (A, G) = gae_advantages(r, V, ..., lambda)   lambda = 1 for reward_to_go, --gae-lambda for lambda
    an episode still running at the end of the rollout bootstraps with gamma^j V(s_T) (nothing without a
    critic: its reward-to-go is cut there), a time-limit end with V(final obs). A = G - V, standardised per
    agent with --normalize; one Adam step on sum_k loss_total_k (each agent's gradient is its own), clipped
    per agent; then --critic-epochs steps of 0.5 mean (V - G)^2.
    """

    def __init__(self, config: ReinforceConfig, spaces, template, seeds: list[int]):
        self.config = config
        self.rollout_steps = config.rollout_steps   # T of the rollout the trainer hands to learn()
        models, critics = [], []
        for seed in seeds:   # the models a --backend gym run with this seed starts from, in the same order
            keras.utils.set_random_seed(seed)
            models.append(torso_for(spaces.observation_space, config.hidden, template.output_dim(spaces.action_space),
                                    name="policy", output_scale=0.01, activation=config.activation))
            if config.baseline == "critic":
                critics.append(mlp(int(spaces.observation_space.shape[0]), config.critic_hidden, 1, name="critic",
                                   activation=config.critic_activation))
        log_stds = None if template.kind != "gaussian" else [template.log_std.numpy()] * len(seeds)
        self.policy = StackedPolicy(template, models, log_stds)
        self.optimizer = keras.optimizers.Adam(learning_rate=config.lr, epsilon=config.adam_eps)
        self.optimizer.build(self.policy.variables)
        self.critic = StackedMLP(critics, "critic") if critics else None
        if self.critic is not None:
            self.critic_optimizer = keras.optimizers.Adam(learning_rate=config.critic_lr)
            self.critic_optimizer.build(self.critic.variables)

    @property
    def trackables(self) -> dict:
        extra = {} if self.critic is None else {"critic": self.critic.variables,
                                                 "critic_optimizer": self.critic_optimizer}
        return {"policy": self.policy.variables, "optimizer": self.optimizer, **extra}

    def values(self, obs):
        """V(s) for time-major observations [T, K, N, obs] (or [K, N, obs]); zeros without a critic."""
        if self.critic is None:
            return tf.zeros(tf.shape(obs)[:-1])
        if obs.shape.rank == 3:
            return self.critic(obs)[..., 0]
        t, k, n = tf.unstack(tf.shape(obs)[:3])
        flat = tf.reshape(tf.transpose(obs, [1, 0, 2, 3]), [k, t * n, -1])
        return tf.transpose(tf.reshape(self.critic(flat)[..., 0], [k, t, n]), [1, 0, 2])

    def learn(self, rollout) -> tuple[dict, tf.Tensor]:
        """One update of every agent on its rollout: ({metric: [K]}, whether the step was applied)."""
        config = self.config
        values = self.values(rollout.obs)
        lam = config.gae_lambda if config.returns == "lambda" else 1.0
        advantages, returns = gae_advantages(
            rollout.rewards, values, rollout.terminated, rollout.truncated, self.values(rollout.final_obs),
            self.values(rollout.last_obs), config.gamma, lam)
        advantages, returns, values = agent_major(advantages), agent_major(returns), agent_major(values)
        if config.normalize:
            mean, var = tf.nn.moments(advantages, axes=[1], keepdims=True)
            advantages = (advantages - mean) / (tf.sqrt(var) + 1e-8)
        obs, actions = agent_major(rollout.obs), agent_major(rollout.actions)
        metrics, finite = self._policy_step(obs, actions, advantages)
        metrics.update(baseline=tf.reduce_mean(values, 1), batch_scales=tf.reduce_mean(advantages, 1),
                       batch_scales_std=tf.math.reduce_std(advantages, 1), returns_mean=tf.reduce_mean(returns, 1))
        metrics["reuse/epochs"] = tf.ones_like(metrics["entropy"])   # as --backend gym logs it: one pass
        if self.critic is not None:
            metrics.update(self._critic_steps(obs, returns, values))
        return metrics, finite

    def _policy_step(self, obs, actions, advantages):
        """One Adam step of every agent on loss_total_k = -mean(A log pi) - beta H, the gradients agent by agent
        (`per_agent_gradients`); then, with the new weights, KL(before || after) and kl_old per agent."""
        policy, config = self.policy, self.config
        variables = policy.variables

        def agent_loss(weights, batch):   # one agent's [B, ...], or [1, B, ...] (`one_agent`)
            obs_k, actions_k, advantages_k = batch
            params = policy.params(obs_k, weights)
            dist = policy.distribution(params)
            log_probs = dist.log_prob(actions_k)
            entropy = tf.reduce_mean(dist.entropy(), -1)
            loss_policy = -tf.reduce_mean(advantages_k * log_probs, -1)
            loss_entropy = -config.entropy_beta * entropy
            return loss_policy + loss_entropy, {"loss_policy": loss_policy, "loss_entropy": loss_entropy,
                                                "entropy": entropy, "log_probs": log_probs, "params": params}

        aux_dtypes = {name: tf.float32 for name in ("loss_policy", "loss_entropy", "entropy", "log_probs")}
        aux_dtypes["params"] = {name: tf.float32 for name in policy.param_names}
        grads, loss_total, aux = per_agent_gradients(agent_loss, variables, (obs, actions, advantages), aux_dtypes)
        stats = per_agent_gradient_stats(grads)
        if config.grad_clip > 0:
            grads = clip_per_agent(grads, stats["norm"], config.grad_clip)
        # A NaN/inf step would destroy the weights and Adam's moments: skip it (for all agents: one Adam).
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(x)) for x in [loss_total, *grads]])

        def apply():
            self.optimizer.apply_gradients(zip(grads, variables))
            return tf.constant(True)

        finite = tf.cond(finite, apply, lambda: tf.constant(False))

        def agent_kl(args):
            weights, before, obs_k, actions_k, log_probs_k = args
            after = policy.distribution(policy.params(obs_k, weights))
            return tf.stack([tf.reduce_mean(tfd.kl_divergence(policy.distribution(before), after), -1),
                             tf.reduce_mean(log_probs_k - after.log_prob(actions_k), -1)], -1)

        kl = tf.map_fn(one_agent(agent_kl, variables[0].shape[0]),
                       ([v.value() for v in variables], aux["params"], obs, actions, aux["log_probs"]),
                       fn_output_signature=tf.float32)
        entropy = aux["entropy"]
        metrics = {"loss_policy": aux["loss_policy"], "loss_entropy": aux["loss_entropy"], "loss_total": loss_total,
                   "entropy": entropy, "kl": kl[:, 0], "kl_old": kl[:, 1], "ratio_mean": tf.ones_like(entropy),
                   "grad_l2": stats["grad_l2"], "grad_max": stats["grad_max"]}
        if policy.log_std is not None:
            metrics.update({f"policy/std_{d}": tf.exp(policy.log_std[:, d]) for d in range(policy.log_std.shape[1])})
        return metrics, finite

    def _critic_steps(self, obs, returns, values) -> dict:
        """--critic-epochs Adam steps on 0.5 mean_t (V(s_t) - G_t)^2 per agent; the loss of the first, and the
        explained variance 1 - Var(G - V) / Var(G) of the values used for this batch."""
        losses = []
        for _ in range(self.config.critic_epochs):
            with tf.GradientTape() as tape:
                loss = 0.5 * tf.reduce_mean(tf.square(self.critic(obs)[..., 0] - returns), 1)
                summed = tf.reduce_sum(loss)
            grads = tape.gradient(summed, self.critic.variables)
            self.critic_optimizer.apply_gradients(zip(grads, self.critic.variables))
            losses.append(loss)
        var_returns = tf.math.reduce_variance(returns, 1)
        explained = 1.0 - tf.math.reduce_variance(returns - values, 1) / var_returns
        return {"value_loss": losses[0],
                "explained_variance": tf.where(var_returns > 0, explained, float("nan"))}
