"""The on-policy actor-critic core shared by A2C, PPO and TRPO/NPG (a piece, not an algorithm).

One iteration of each of them starts the same way:

    rollout  T vector steps of N envs (`tfpg.experience.collectors.FixedHorizonCollector`), one policy call per step
    obs norm the policy's running statistics take in the rollout's observations (exported with it)
    values   V(s) for every row and for the observation after the cut, one compiled critic call
    rewards  with --normalize-reward, r_t / sqrt(Var[R] + eps), R the running discounted return of each env
             (`tfpg.models.normalization.RewardNormalizer`); the episode returns logged stay the env's own
    GAE      delta_t = r_t + gamma V(s_{t+1}) [not terminated] - V(s_t),  A_t = sum_k (gamma lambda)^k delta_{t+k}
             within the episode (`tfpg.maths.returns.gae_advantages`); a time-limit truncation bootstraps
             V(final observation), a termination does not, an episode running at the cut bootstraps V(s_T)
    targets  G_t = A_t + V(s_t) for the critic; A_t standardised over the batch (--normalize)
    pi_old   the distribution parameters and log pi_old(a_t|s_t) of the batch, after the statistics update,
             so that the ratio pi/pi_old is exactly 1 before the first gradient step

and hands back an `ActorCriticBatch` of the live transitions (autoreset rows dropped). The
algorithms differ only in what they do with it. The critic V_phi is its own network on the
policy's (normalised) features, or, with a shared torso, a value head on the policy's last hidden layer.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import keras
import numpy as np
import tensorflow as tf

from tfpg.config.options import flag_name, option
from tfpg.config.run import PolicyGradientConfig
from tfpg.core.errors import ConfigError
from tfpg.experience.collectors import FixedHorizonCollector
from tfpg.maths.returns import gae_advantages, standardize
from tfpg.models import networks
from tfpg.models.baselines import explained_variance
from tfpg.models.normalization import RewardNormalizer
from tfpg.models.policies import make_policy, policy_kind


@dataclass
class ActorCriticConfig(PolicyGradientConfig):
    """Fixed-horizon rollouts with a critic and GAE; the defaults are the robust settings for an env
    without a preset: critic + GAE(0.95), standardised advantages (A2C: not), tanh 64-64, and both of the zoo's
    `normalize: true` (Stable-Baselines3's VecNormalize): running observation statistics inside the policy
    and rewards scaled by the running std of the discounted return. Why both, together: an untrained critic
    is optimistic against the scaled costs, which drives exploration (`docs/journal/2026-12-06-normalisations.md`)."""

    horizon: int = option(256, "vector steps per env in each rollout (T): a batch is T x --num-envs steps "
                               "(the zoo's n_steps)", low=1)
    num_envs: int = 8
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    normalize: bool = True
    normalize_obs: bool = True
    normalize_reward: bool = True
    lr: float = 3e-4
    grad_clip: float = 0.5

    # Options of the shared base this algorithm does not use: refused unless left at their default.
    unused: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def group_title(cls) -> str:
        return "actor-critic (a2c, ppo, trpo, npg)"

    def check(self) -> None:
        # first: an option the algorithm ignores is the problem, whatever the shared rules say about it
        defaults = {f.name: f.default for f in dataclasses.fields(type(self))}
        for name in self.unused:
            if getattr(self, name) != defaults[name]:
                raise ConfigError(f"{flag_name(name)} does not apply to --algo {self.algo}")
        super().check()


@dataclass
class ActorCriticBatch:
    """The live transitions of one rollout, flattened (M <= T x N rows), with what the updates need."""

    observations: np.ndarray    # (M, *obs_shape)
    actions: np.ndarray         # (M, *act_shape)
    advantages: np.ndarray      # (M,) GAE, standardised with --normalize
    returns: np.ndarray         # (M,) critic targets A + V (unstandardised A)
    values: np.ndarray          # (M,) V_old(s_t), the critic before this update
    log_probs: np.ndarray       # (M,) log pi_old(a_t|s_t)
    params: dict                # pi_old's distribution parameters, {name: (M, ...)}

    def explained_variance(self) -> float:
        return explained_variance(self.values, self.returns)


def build_critic(policy, observation_space, hidden, shared_torso: bool, activation: str = "relu") -> keras.Model:
    """V_phi: a separate network (an MLP with `activation`, or the Nature CNN on frames) on the policy's features,
    or with `shared_torso` a linear value head on the policy network's last hidden layer (the layers are shared,
    so their activation is the policy's)."""
    if not shared_torso:
        return networks.torso_for(observation_space, hidden, 1, name="critic", activation=activation)
    torso = policy.model.layers[-2].output   # the last hidden layer, before the policy's output layer
    value = keras.layers.Dense(1, name="value")(torso)
    return keras.Model(policy.model.inputs, value, name="policy_and_value")


def unique_variables(*groups) -> list:
    """The variables of several lists, each once (a shared torso appears in the policy and the critic)."""
    seen, out = set(), []
    for v in (v for group in groups for v in group):
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def build_policy(config: ActorCriticConfig, spaces):
    """pi_theta of the actor-critics, with the running observation statistics unless the observations are frames."""
    return make_policy(policy_kind(config.policy, spaces.action_space), spaces.observation_space,
                       spaces.action_space, config.hidden, config.seed, config.normalize_obs,
                       config.activation, config.log_std_init)


def build_collector(config: ActorCriticConfig, policy, stepper) -> FixedHorizonCollector:
    """T = --horizon vector steps per rollout, acting with `policy` (on a rollout worker too)."""
    return FixedHorizonCollector(stepper, policy.act_numpy, config.horizon, to_env=policy.env_action)


class ActorCritic:
    """Policy + critic + collector + advantages; each algorithm holds one (`self.core`)."""

    def __init__(self, config: ActorCriticConfig, spaces, stepper, shared_torso: bool = False):
        self.config, self.stepper = config, stepper
        self.policy = build_policy(config, spaces)
        self.critic = build_critic(self.policy, spaces.observation_space, config.critic_hidden, shared_torso,
                                   config.critic_activation)
        self.shared_torso = shared_torso
        self.collector = build_collector(config, self.policy, stepper)
        self.reward_normalizer = None
        if config.normalize_reward:
            self.reward_normalizer = RewardNormalizer(stepper.num_envs, config.gamma)
            stepper.on_restart.append(self.reward_normalizer.reset)   # the episodes end there, so does R
            # with --workers, a worker whose process died restarts its own envs (`tfpg.backends.ray.workers.PooledStepper`)
            getattr(stepper, "on_worker_restart", []).append(self.reward_normalizer.reset)
        policy = self.policy
        self._values = tf.function(self.value, input_signature=[policy.obs_spec]).get_concrete_function()

        @tf.function(input_signature=[policy.obs_spec, policy.action_spec])
        def old_policy(observations, actions):
            params = policy.distribution_params(observations)
            return params, policy.distribution_from_params(params).log_prob(actions)

        self._old_policy = old_policy.get_concrete_function()

    def value(self, observations):
        """V_phi(s) on the policy's features (the running normalisation, or raw frames)."""
        return self.critic(self.policy.features(observations))[:, 0]

    @property
    def critic_variables(self) -> list:
        return self.critic.trainable_variables

    def trackables(self) -> dict:
        return {**{f"policy_{k}": v for k, v in self.policy.trackables.items()}, "policy_rng": self.policy.rng,
                "critic": self.critic}

    def _normalizers(self) -> dict:
        return {prefix: n for prefix, n in (("obs_norm/", self.policy.normalizer),
                                            ("reward_norm/", self.reward_normalizer)) if n is not None}

    def state(self) -> dict:
        return {prefix + k: v for prefix, n in self._normalizers().items() for k, v in n.state().items()}

    def load_state(self, state: dict) -> None:
        for prefix, normalizer in self._normalizers().items():
            normalizer.load({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    def collect(self) -> ActorCriticBatch:
        """One rollout -> statistics update -> V -> GAE(lambda) -> the live rows with pi_old (module docstring)."""
        config, policy = self.config, self.policy
        rollout = self.collector.collect()
        horizon, n = rollout.rewards.shape
        obs_dtype = policy.obs_spec.dtype.as_numpy_dtype
        observations = rollout.observations.reshape(horizon * n, *rollout.observations.shape[2:]).astype(obs_dtype)
        live = rollout.live.reshape(-1)
        if policy.normalizer is not None:
            policy.normalizer.update(observations[live])
        values = self._values(np.concatenate([observations, rollout.last_observations.astype(obs_dtype)])).numpy()
        values, last_values = values[:horizon * n].reshape(horizon, n), values[horizon * n:]
        # V of what follows each row: the next row's observation, which after an end is the final one
        following = np.concatenate([values[1:], last_values[None]])
        rewards = rollout.rewards
        if self.reward_normalizer is not None:
            rewards = self.reward_normalizer(rewards, rollout.terminated | rollout.truncated, rollout.live)
        advantages, returns = gae_advantages(rewards, values, rollout.terminated, rollout.truncated, following,
                                             last_values, config.gamma, config.gae_lambda)
        observations = observations[live]
        actions = rollout.actions.reshape(horizon * n, *rollout.actions.shape[2:])[live]
        actions = actions.astype(policy.action_spec.dtype.as_numpy_dtype)
        advantages = advantages.reshape(-1)[live]
        params, log_probs = self._old_policy(observations, actions)
        return ActorCriticBatch(
            observations=observations, actions=actions,
            advantages=standardize(advantages) if config.normalize else advantages,
            returns=returns.reshape(-1)[live], values=values.reshape(-1)[live], log_probs=log_probs.numpy(),
            params={k: v.numpy() for k, v in params.items()})

    def diagnostics(self, batch: ActorCriticBatch, kl: float, entropy: float) -> dict:
        """What every actor-critic logs: KL(pi_old || pi_new) on the batch, the entropy, the critic's explained
        variance (of the values used for the advantages), and the policy's own (the Gaussian sigmas)."""
        scale = {} if self.reward_normalizer is None else {"reward_scale": self.reward_normalizer.scale}
        return {"kl": kl, "entropy": entropy, "explained_variance": batch.explained_variance(),
                "value_mean": float(np.mean(batch.values)), "batch_steps": float(len(batch.actions)),
                **scale, **self.policy.diagnostics()}


def make_kl_and_entropy(policy):
    """Compiled (observations, params_old) -> (mean_s KL(pi_old(.|s) || pi(.|s)), mean_s H(pi(.|s))), exact (tfp)."""
    from tfpg.maths.natural_gradient import mean_kl, params_spec

    @tf.function(input_signature=[policy.obs_spec, params_spec(policy)])
    def kl_and_entropy(observations, params_old):
        return mean_kl(policy, observations, params_old), tf.reduce_mean(policy.distribution(observations).entropy())

    return kl_and_entropy.get_concrete_function()


def built_optimizer(learning_rate: float, epsilon: float, variables=None, kind: str = "adam") -> keras.optimizers.Optimizer:
    """Adam (or `kind` "rmsprop"), built for `variables` up front (its slots exist before a checkpoint restores
    into them).

    RMSprop is PyTorch's, which Stable-Baselines3's A2C uses: v <- 0.99 v + 0.01 g^2, theta <- theta - lr g /
    (sqrt(v) + epsilon). Keras adds its epsilon under the root, lr g / sqrt(v + epsilon_k), so epsilon_k =
    epsilon^2: the same step wherever sqrt(v) >> epsilon, and at most sqrt(2) apart where they are equal.
    """
    if kind == "rmsprop":
        optimizer = keras.optimizers.RMSprop(learning_rate=learning_rate, rho=0.99, epsilon=epsilon ** 2)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, epsilon=epsilon)
    if variables is not None:
        optimizer.build(variables)
    return optimizer

