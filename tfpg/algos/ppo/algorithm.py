"""PPO with the clipped surrogate (Schulman et al. 2017).

Each iteration collects T vector steps of N envs (`tfpg.algos.actor_critic`: GAE(lambda) advantages A_t,
standardised, critic targets G_t = A_t + V_old(s_t), pi_old) and then, for K epochs, walks the
batch in shuffled minibatches of B transitions, one gradient step each on

    r_t          = pi_theta(a_t|s_t) / pi_old(a_t|s_t)
    loss_policy  = -mean_t min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)     (`tfpg.maths.losses`)
    loss_entropy = -beta mean_t H(pi_theta(.|s_t))
    value_loss   = mean_t (V_phi(s_t) - G_t)^2, or with --clip-range-vf the clipped form around V_old

theta follows loss_policy + loss_entropy (Adam, --lr), phi follows value_loss (Adam, --critic-lr).
Before each step the minibatch's approx_kl = mean[(r - 1) - log r] is checked: above 1.5 x --target-kl
the batch's remaining steps are skipped (KL early stop, as Stable-Baselines3 does). --linear-lr and
--linear-clip decay the learning rates and eps linearly to 0 over --total-steps (the zoo's lin_<x>).
All epochs and minibatches of an iteration run in one compiled call.

With --backend graph (`GraphPPO`, `tfpg.training.graph_trainer`) the rollout, GAE and all the epochs run in one
XLA-compiled program for K stacked agents, with the same loss functions reduced per agent.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpg.algos.actor_critic import ActorCritic, ActorCriticConfig, apply_if_finite, built_optimizer
from tfpg.algos.actor_critic_base import ActorCriticAlgorithm
from tfpg.algos.base import Iteration
from tfpg.algos.reinforce.algorithm import clip_per_agent, per_agent_gradient_stats
from tfpg.config.run import Preset
from tfpg.core.errors import ConfigError
from tfpg.maths.losses import clipped_surrogate_loss, entropy_loss, value_estimation_loss
from tfpg.config.options import option
from tfpg.maths.schedules import constant_or_linear


@dataclass
class PPOConfig(ActorCriticConfig):
    """PPO-clip: epochs of shuffled minibatch steps on each fixed-horizon batch (see the module docstring)."""

    algo: str = "ppo"
    minibatch_size: int = 64
    # Why a KL stop by default: the state-independent sigma keeps shrinking, so one batch's 10 epochs move the
    # policy further and further until they undo what it learned. BipedalWalker-v3 without it (seed 0): KL 0.2
    # per batch and 60% of the ratios clipped by 2.3M steps, reward_100 down from 280 to 96 (lr decayed) or a
    # greedy -42 after 5M (lr constant); with it, sigma levels off and reward_100 stays near 290 (README).
    # TRPO's constraint as an early stop, Spinning Up's default form.
    target_kl: float = 0.02
    adam_eps: float = 1e-5   # Stable-Baselines3's
    epochs: int = option(10, "passes over each batch, each in shuffled minibatches of --minibatch-size (one, if "
                                 "the batch is smaller)", low=1)
    clip_range: float = option(0.2, "eps of the clipped ratio clip(r, 1 - eps, 1 + eps)", low=0.0, low_open=True,
                               high=1.0)
    clip_range_vf: float = option(0.0, "keep V within this of the batch's old values unless moving further lowers "
                                       "the error (clipped value loss); 0 = off", low=0.0)
    linear_lr: bool = option(False, "decay --lr (and --critic-lr) linearly to 0 over --total-steps")
    linear_clip: bool = option(False, "decay --clip-range linearly to 0 over --total-steps")
    critic_lr: float = 3e-4

    unused: ClassVar[tuple[str, ...]] = ("critic_epochs", "kl_adaptive_lr")

    @classmethod
    def group_title(cls) -> str:
        return "ppo"


ZOO = "rl-baselines3-zoo hyperparams/ppo.yml entry {env} (rl-zoo3 2.x) with Stable-Baselines3 PPO defaults"

PRESETS = (
    Preset("ppo-cartpole", "ppo",
           "PPO on CartPole-v1: 8 envs x 32 steps, one minibatch of 256, 20 epochs, GAE(0.8), gamma 0.98, lr and "
           "clip range linear from 1e-3 and 0.2",
           ZOO.format(env="CartPole-v1") + " (64-64 tanh, max_grad_norm 0.5, standardised advantages); deviation: "
           "two Adams, policy and critic, each clipped on its own (SB3: one on policy + 0.5 x value loss)",
           dict(env_id="CartPole-v1", num_envs=8, horizon=32, minibatch_size=256, epochs=20, gae_lambda=0.8,
                gamma=0.98, entropy_beta=0.0, lr=1e-3, critic_lr=1e-3, linear_lr=True, clip_range=0.2, target_kl=0.0,
                linear_clip=True, normalize=True, normalize_obs=False, normalize_reward=False, critic_activation="tanh",
                grad_clip=0.5,
                hidden=(64, 64), critic_hidden=(64, 64), activation="tanh", stop_reward=475.0, total_steps=100_000),
           default=True),
    Preset("ppo-lunarlander-continuous", "ppo",
           "PPO on LunarLanderContinuous-v3: 16 envs x 1024 steps, minibatches of 64, 4 epochs, GAE(0.98), gamma "
           "0.999, entropy 0.01, lr 3e-4",
           ZOO.format(env="LunarLanderContinuous-v3") + " (64-64 tanh, clip 0.2, max_grad_norm 0.5, standardised "
           "advantages); deviations: observation normalisation added (the zoo entry has none), a ReLU critic (SB3's "
           "is tanh)",
           dict(env_id="LunarLanderContinuous-v3", num_envs=16, vector_mode="sync", horizon=1024, minibatch_size=64,
                epochs=4, gae_lambda=0.98, gamma=0.999, entropy_beta=0.01, lr=3e-4, critic_lr=3e-4, clip_range=0.2,
                target_kl=0.0,
                normalize=True, normalize_obs=True, normalize_reward=False, critic_activation="relu",
                grad_clip=0.5, hidden=(64, 64),
                critic_hidden=(64, 64), activation="tanh", total_steps=1_000_000, eval_every=100_000, eval_episodes=10),
           default=True),
)


class PPOUpdate:
    """All epochs x minibatches of one iteration in one compiled call; shuffles with a checkpointed generator."""

    def __init__(self, core: ActorCritic, optimizer, critic_optimizer, config: PPOConfig):
        self.core, self.optimizer, self.critic_optimizer, self.config = core, optimizer, critic_optimizer, config
        self.shuffle = tf.random.Generator.from_seed(config.seed + 1)
        policy = core.policy
        scalar = tf.TensorSpec([None], tf.float32)
        self._graph = tf.function(self._update, input_signature=[
            policy.obs_spec, policy.action_spec, scalar, scalar, scalar, scalar, tf.TensorSpec([], tf.float32)
        ]).get_concrete_function()

    def _step(self, observations, actions, advantages, returns, old_log_probs, old_values, clip_range):
        """One minibatch: the losses, the KL test, and (if it passes) the two Adam steps."""
        config, policy = self.config, self.core.policy
        with tf.GradientTape(persistent=True) as tape:
            distribution = policy.distribution(observations)
            loss_policy, info = clipped_surrogate_loss(distribution.log_prob(actions), old_log_probs, advantages,
                                                       clip_range)
            actor_loss = loss_policy + config.entropy_beta * entropy_loss(distribution.entropy())
            value_loss = value_estimation_loss(self.core.value(observations), returns, old_values,
                                               config.clip_range_vf or None)
        go_on = tf.constant(True) if not config.target_kl else info["approx_kl"] <= 1.5 * config.target_kl
        applied = tf.constant(False)
        if go_on:
            actor_ok = apply_if_finite(self.optimizer, actor_loss, tape.gradient(actor_loss, policy.variables),
                                       policy.variables, config.grad_clip)
            critic_vars = self.core.critic_variables
            critic_ok = apply_if_finite(self.critic_optimizer, value_loss, tape.gradient(value_loss, critic_vars),
                                        critic_vars, config.grad_clip)
            applied = tf.logical_and(actor_ok, critic_ok)
        return go_on, applied, tf.stack([loss_policy, value_loss, info["clip_fraction"], info["approx_kl"]])

    def _update(self, observations, actions, advantages, returns, old_log_probs, old_values, clip_range):
        n = tf.shape(advantages)[0]
        size = self.config.minibatch_size
        minibatches = (n + size - 1) // size
        sums, steps, skipped, epochs_run = tf.zeros(4), tf.constant(0), tf.constant(0), tf.constant(0)
        go_on = tf.constant(True)
        for _ in tf.range(self.config.epochs):
            if not go_on:
                break
            order = tf.argsort(self.shuffle.uniform([n]))
            epochs_run += 1
            for i in tf.range(minibatches):
                rows = order[i * size:tf.minimum((i + 1) * size, n)]
                go_on, applied, values = self._step(
                    tf.gather(observations, rows), tf.gather(actions, rows), tf.gather(advantages, rows),
                    tf.gather(returns, rows), tf.gather(old_log_probs, rows), tf.gather(old_values, rows), clip_range)
                if not go_on:
                    break
                sums += values
                steps += 1
                skipped += 1 - tf.cast(applied, tf.int32)
        means = sums / tf.cast(tf.maximum(steps, 1), tf.float32)
        return {"loss_policy": means[0], "value_loss": means[1], "clip_fraction": means[2], "approx_kl": means[3],
                "gradient_steps": steps, "skipped": skipped, "epochs_run": epochs_run}

    def __call__(self, batch, clip_range: float) -> dict:
        return self._graph(batch.observations, batch.actions, batch.advantages, batch.returns, batch.log_probs,
                           batch.values, tf.constant(clip_range, tf.float32))


class PPO(ActorCriticAlgorithm):
    """Collect T x N steps, compute GAE, K epochs of clipped-surrogate minibatch steps in one compiled call."""

    name = "ppo"
    config_class = PPOConfig
    loss_metric = "loss_policy"
    presets = PRESETS

    def __init__(self, config: PPOConfig, spaces, stepper):
        self._build_core(config, spaces, stepper)
        self.optimizer = built_optimizer(config.lr, config.adam_eps, self.policy.variables)
        self.critic_optimizer = built_optimizer(config.critic_lr, config.adam_eps, self.core.critic_variables)
        self.update = PPOUpdate(self.core, self.optimizer, self.critic_optimizer, config)
        self.lr = constant_or_linear(config.lr, config.linear_lr, config.total_steps)
        self.critic_lr = constant_or_linear(config.critic_lr, config.linear_lr, config.total_steps)
        self.clip_range = constant_or_linear(config.clip_range, config.linear_clip, config.total_steps)

    @classmethod
    def check_graph_backend(cls, config: PPOConfig) -> None:
        refusal = graph_refusal(config)
        if refusal:
            raise ConfigError(refusal)

    @classmethod
    def graph_learner(cls, config: PPOConfig, spaces, template, seeds: list[int]) -> GraphPPO:
        """The learner `tfpg.training.graph_trainer` runs for --backend graph: K agents with seeds `seeds`."""
        return GraphPPO(config, spaces, template, seeds)

    def trackables(self) -> dict:
        return {**self.core.trackables(), "optimizer": self.optimizer, "critic_optimizer": self.critic_optimizer,
                "shuffle": self.update.shuffle}

    def iteration(self) -> Iteration:
        batch = self.core.collect()
        steps = self.stepper.env_steps   # the schedules' position: env steps before this update
        self.optimizer.learning_rate.assign(self.lr(steps))
        self.critic_optimizer.learning_rate.assign(self.critic_lr(steps))
        clip_range = self.clip_range(steps)
        out = {k: v.numpy() for k, v in self.update(batch, clip_range).items()}
        skipped = int(out.pop("skipped"))
        finite = [True] * (int(out["gradient_steps"]) - skipped) + [False] * skipped
        metrics = {k: float(v) for k, v in out.items()}
        metrics.update(self.batch_diagnostics(batch), lr=self.lr(steps), clip_range=clip_range)
        return Iteration(metrics, finite=finite)


# --- the graph backend (--backend graph): PPO for K stacked agents -------------------------------------------
def graph_refusal(config: PPOConfig) -> str | None:
    """The options `--backend graph` does not implement for PPO, as a one-line refusal; None if it implements all.

    Implemented: --horizon (T) x --num-envs, --epochs, --minibatch-size, --clip-range(-vf), --linear-lr,
    --linear-clip, --normalize, --entropy-beta, --grad-clip (per agent), --critic-*, --gae-lambda, both
    policies. --target-kl is not: an agent that stops early must skip its remaining steps, and one Adam
    over the stacked agents moves every agent's slice at each step (its moments), gradient or not."""
    from tfpg.backends.graph.stacked import refusal_line

    default_rollout = {f.name: f.default for f in dataclasses.fields(PPOConfig)}["rollout_steps"]
    return refusal_line("ppo", (
        (config.normalize_obs, "--normalize-obs", "--normalize-obs false"),
        (config.normalize_reward, "--normalize-reward", "--normalize-reward false"),
        (bool(config.target_kl), "--target-kl", "--target-kl 0"),
        (config.rollout_steps != default_rollout, "--rollout-steps", "--horizon for PPO's rollout length"),
    ))


def apply_if_finite_per_agent(optimizer, losses, grads, variables, grad_clip: float):
    """`tfpg.algos.actor_critic.apply_if_finite` for K stacked agents: agent k's gradients clipped to its own global
    norm (g[k] * c / max(||g[k]||, c)), and the step applied only if every loss [K] and gradient is finite
    (to all agents or none: they share one optimizer step). Returns whether it applied."""
    if grad_clip > 0:
        grads = clip_per_agent(grads, per_agent_gradient_stats(grads)["norm"], grad_clip)
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(x)) for x in [losses, *grads]])

    def apply():
        optimizer.apply_gradients(zip(grads, variables))
        return tf.constant(True)

    return tf.cond(finite, apply, lambda: tf.constant(False))


class GraphPPO:
    """PPO's learner on the graph backend for K agents with stacked weights (`tfpg.backends.graph.stacked`).

    On a rollout [T, K, N] (T = --horizon), in the compiled program:
        V(s_t), V(final obs), V(s_T)  -> (A, G) = fixed_horizon_advantages(r, V, ..., gamma, lambda): a time-limit
                                         truncation bootstraps V(final obs), a termination does not
        A standardised per agent (--normalize); pi_old's parameters and log pi_old(a|s) of the batch
        --epochs passes, each over a permutation of the agent's T*N rows drawn from its own key (stateless:
        a seed reproduces), in minibatches of --minibatch-size (the last one smaller where it does not divide);
        per minibatch one Adam step on sum_k (loss_policy_k + loss_entropy_k) and one on sum_k value_loss_k,
        the losses of `tfpg.maths.losses` reduced per agent (axis=-1), gradients clipped per agent
    --linear-lr / --linear-clip read the env steps from a variable the program moves on (checkpointed).
    """

    def __init__(self, config: PPOConfig, spaces, template, seeds: list[int]):
        from tfpg.backends.graph.stacked import StackedMLP, StackedPolicy
        from tfpg.envs.graph import make_key
        from tfpg.envs.graph.core import RNG_ALG
        from tfpg.models.networks import torso_for

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
        from tfpg.backends.graph.stacked import agent_major, fixed_horizon_advantages

        config, policy = self.config, self.policy
        steps = self.env_steps.assign_add(rollout.rewards.shape[0] * rollout.rewards.shape[2])
        values = self.critic.time_major(rollout.obs)[..., 0]
        advantages, returns = fixed_horizon_advantages(
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
        from tfpg.envs.graph.core import RNG_ALG

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
