"""PPO on the graph backend (`--backend graph`): the learner of K stacked agents and what it refuses."""
from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.algos.actor_critic import built_optimizer
from tfpg.algos.ppo.config import PPOConfig
from tfpg.backends.graph.stacked import (
    StackedMLP,
    StackedPolicy,
    agent_major,
    apply_if_finite_per_agent,
    refusal_line,
)
from tfpg.envs.graph.core import make_key
from tfpg.envs.graph.core import RNG_ALG
from tfpg.maths.losses import clipped_surrogate_loss, entropy_loss, value_estimation_loss
from tfpg.maths.returns import gae_advantages
from tfpg.maths.schedules import constant_or_linear
from tfpg.models.networks import torso_for


# --- the graph backend (--backend graph): PPO for K stacked agents -------------------------------------------
def graph_refusal(config: PPOConfig) -> str | None:
    """The options `--backend graph` does not implement for PPO, as a one-line refusal; None if it implements all.

    Implemented: --horizon (T) x --num-envs, --epochs, --minibatch-size, --clip-range(-vf), --linear-lr,
    --linear-clip, --normalize, --entropy-beta, --grad-clip (per agent), --critic-*, --gae-lambda, both
    policies. --target-kl is not: an agent that stops early must skip its remaining steps, and one Adam
    over the stacked agents moves every agent's slice at each step (its moments), gradient or not."""
    default_rollout = {f.name: f.default for f in dataclasses.fields(PPOConfig)}["rollout_steps"]
    return refusal_line("ppo", (
        (config.normalize_obs, "--normalize-obs", "--normalize-obs false"),
        (config.normalize_reward, "--normalize-reward", "--normalize-reward false"),
        (bool(config.target_kl), "--target-kl", "--target-kl 0"),
        (config.rollout_steps != default_rollout, "--rollout-steps", "--horizon for PPO's rollout length"),
    ))


class GraphPPO:
    """PPO's learner on the graph backend for K agents with stacked weights (`tfpg.backends.graph.stacked`).

    On a rollout [T, K, N] (T = --horizon), in the compiled program:
        V(s_t), V(final obs), V(s_T)  -> (A, G) = gae_advantages(r, V, ..., gamma, lambda): a time-limit
                                         truncation bootstraps V(final obs), a termination does not
        A standardised per agent (--normalize); pi_old's parameters and log pi_old(a|s) of the batch
        --epochs passes, each over a permutation of the agent's T*N rows drawn from its own key (stateless:
        a seed reproduces), in minibatches of --minibatch-size (the last one smaller where it does not divide);
        per minibatch one Adam step on sum_k (loss_policy_k + loss_entropy_k) and one on sum_k value_loss_k,
        the losses of `tfpg.maths.losses` reduced per agent (axis=-1), gradients clipped per agent
    --linear-lr / --linear-clip read the env steps from a variable the program moves on (checkpointed).
    """

    def __init__(self, config: PPOConfig, spaces, template, seeds: list[int]):
        self.config, self.rollout_steps = config, config.horizon
        models, critics = [], []
        for seed in seeds:   # the networks of a --backend gym run with this seed, in the order it builds them
            keras.utils.set_random_seed(seed)
            models.append(torso_for(spaces.observation_space, config.hidden, template.output_dim(spaces.action_space),
                                    name="policy", output_scale=0.01, activation=config.activation))
            critics.append(torso_for(spaces.observation_space, config.critic_hidden, 1, name="critic",
                                     activation=config.critic_activation))
        log_stds = None if template.kind != "gaussian" else [template.log_std.numpy()] * len(seeds)
        self.policy = StackedPolicy(template, models, log_stds)
        self.critic = StackedMLP(critics, "critic")
        self.optimizer = built_optimizer(config.lr, config.adam_eps, self.policy.variables)
        self.critic_optimizer = built_optimizer(config.critic_lr, config.adam_eps, self.critic.variables)
        self.lr = constant_or_linear(config.lr, config.linear_lr, config.total_steps)
        self.critic_lr = constant_or_linear(config.critic_lr, config.linear_lr, config.total_steps)
        self.clip_range = constant_or_linear(config.clip_range, config.linear_clip, config.total_steps)
        self.env_steps = tf.Variable(0, dtype=tf.int64, name="schedule_env_steps")
        # Each agent's shuffles come from its own key, folded apart from the one its envs and samples start from.
        self.shuffle_keys = tf.Variable(tf.stack([tf.random.experimental.stateless_fold_in(make_key(s), 1, alg=RNG_ALG)
                                                  for s in seeds]), name="shuffle_keys")

    @property
    def trackables(self) -> dict:
        return {"policy": self.policy.variables, "optimizer": self.optimizer, "critic": self.critic.variables,
                "critic_optimizer": self.critic_optimizer, "schedule_env_steps": self.env_steps,
                "shuffle_keys": self.shuffle_keys}

    def learn(self, rollout) -> tuple[dict, tf.Tensor]:
        """One PPO update of every agent on its rollout: ({metric: [K]}, whether every step was applied)."""
        config, policy = self.config, self.policy
        steps = self.env_steps.assign_add(rollout.rewards.shape[0] * rollout.rewards.shape[2])
        values = self.critic.time_major(rollout.obs)[..., 0]
        advantages, returns = gae_advantages(
            rollout.rewards, values, rollout.terminated, rollout.truncated,
            self.critic.time_major(rollout.final_obs)[..., 0], self.critic(rollout.last_obs)[..., 0],
            config.gamma, config.gae_lambda)
        advantages, returns, values = agent_major(advantages), agent_major(returns), agent_major(values)
        if config.normalize:   # per agent, as `tfpg.maths.returns.standardize` over its batch
            mean, var = tf.nn.moments(advantages, axes=[1], keepdims=True)
            advantages = (advantages - mean) / (tf.sqrt(var) + 1e-8)
        obs, actions = agent_major(rollout.obs), agent_major(rollout.actions)
        old_params = policy.params(obs)
        old_log_probs = policy.distribution(old_params).log_prob(actions)
        lr, clip_range = self.lr.in_graph(steps), self.clip_range.in_graph(steps)
        self.optimizer.learning_rate.assign(lr)
        self.critic_optimizer.learning_rate.assign(self.critic_lr.in_graph(steps))
        sums, skipped = self._epochs((obs, actions, advantages, returns, old_log_probs, values), clip_range)
        gradient_steps = config.epochs * -(-obs.shape[1] // min(config.minibatch_size, obs.shape[1]))
        means = sums / gradient_steps
        metrics = {"loss_policy": means[0], "value_loss": means[1], "clip_fraction": means[2], "approx_kl": means[3],
                   **self._diagnostics(obs, old_params, values, returns)}
        per_agent = tf.ones_like(means[0])
        metrics.update(gradient_steps=gradient_steps * per_agent, epochs_run=config.epochs * per_agent,
                       skipped=tf.cast(skipped, tf.float32) * per_agent, lr=lr * per_agent,
                       clip_range=clip_range * per_agent, batch_steps=obs.shape[1] * per_agent)
        return metrics, tf.equal(skipped, 0)

    def _epochs(self, batch: tuple, clip_range):
        """--epochs passes of shuffled minibatch steps on batch = (obs, actions, A, G, log pi_old, V_old), each
        [K, M, ...]: the sums over steps of [loss_policy, value_loss, clip_fraction, approx_kl] [4, K], and the
        number of steps skipped as non-finite."""
        num_agents, rows = batch[0].shape[0], batch[0].shape[1]
        size = min(self.config.minibatch_size, rows)
        full, rest = divmod(rows, size)
        split = tf.map_fn(lambda key: tf.random.split(key, self.config.epochs + 1, alg=RNG_ALG), self.shuffle_keys)
        self.shuffle_keys.assign(split[:, 0])

        def minibatch(carry, indices):
            sums, skipped = carry
            losses, applied = self._minibatch_step(batch, indices, clip_range)
            return sums + losses, skipped + 1 - tf.cast(applied, tf.int32)

        def epoch(carry, keys):
            order = tf.map_fn(lambda key: tf.argsort(tf.random.stateless_uniform([rows], key, alg=RNG_ALG)), keys,
                              fn_output_signature=tf.int32)   # [K, M]: each agent's own permutation
            chunks = tf.transpose(tf.reshape(order[:, :full * size], [num_agents, full, size]), [1, 0, 2])
            carry = tf.foldl(minibatch, chunks, initializer=carry)
            return minibatch(carry, order[:, full * size:]) if rest else carry

        epoch_keys = tf.transpose(split[:, 1:], [1, 0, 2])   # [epochs, K, 2]
        return tf.foldl(epoch, epoch_keys, initializer=(tf.zeros([4, num_agents]), tf.constant(0)))

    def _minibatch_step(self, batch: tuple, indices, clip_range):
        """Rows `indices` [K, B] of each agent's batch: its losses, then the policy's and the critic's Adam steps."""
        config, policy = self.config, self.policy
        obs, actions, advantages, returns, old_log_probs, old_values = (tf.gather(x, indices, batch_dims=1)
                                                                        for x in batch)
        with tf.GradientTape(persistent=True) as tape:
            distribution = policy.distribution(policy.params(obs))
            loss_policy, info = clipped_surrogate_loss(distribution.log_prob(actions), old_log_probs, advantages,
                                                       clip_range, axis=-1)
            actor_loss = loss_policy + config.entropy_beta * entropy_loss(distribution.entropy(), axis=-1)
            value_loss = value_estimation_loss(self.critic(obs)[..., 0], returns, old_values,
                                               config.clip_range_vf or None, axis=-1)
            # d sum_k loss_k / d theta_k = d loss_k / d theta_k: each agent's gradient is its own
            actor_sum, critic_sum = tf.reduce_sum(actor_loss), tf.reduce_sum(value_loss)
        actor_ok = apply_if_finite_per_agent(self.optimizer, actor_loss, tape.gradient(actor_sum, policy.variables),
                                             policy.variables, config.grad_clip)
        critic_ok = apply_if_finite_per_agent(self.critic_optimizer, value_loss,
                                              tape.gradient(critic_sum, self.critic.variables), self.critic.variables,
                                              config.grad_clip)
        return tf.stack([loss_policy, value_loss, info["clip_fraction"], info["approx_kl"]]), actor_ok & critic_ok

    def _diagnostics(self, obs, old_params, values, returns) -> dict:
        """Per agent, as `tfpg.algos.actor_critic.ActorCritic.diagnostics`: KL(pi_old || pi_new) and the entropy on the
        batch after the update, the explained variance 1 - Var(G - V) / Var(G) of the values used, their mean,
        and the Gaussian's sigmas."""
        policy = self.policy
        old = policy.distribution(tf.nest.map_structure(tf.stop_gradient, old_params))
        new = policy.distribution(policy.params(obs))
        var_returns = tf.math.reduce_variance(returns, 1)
        explained = 1.0 - tf.math.reduce_variance(returns - values, 1) / var_returns
        out = {"kl": tf.reduce_mean(tfp.distributions.kl_divergence(old, new), 1),
               "entropy": tf.reduce_mean(new.entropy(), 1), "value_mean": tf.reduce_mean(values, 1),
               "explained_variance": tf.where(var_returns > 0, explained, float("nan"))}
        if policy.log_std is not None:
            out.update({f"policy/std_{d}": tf.exp(policy.log_std[:, d]) for d in range(policy.log_std.shape[1])})
        return out
