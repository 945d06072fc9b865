"""The contract shared by the in-graph environments: state, step output, keys, auto-reset.

An in-graph env is a set of pure TensorFlow functions over a batch of N independent envs:

    reset(key, n)             -> (state, obs)
    step(state, action, key)  -> StepOutput(state, obs, reward, terminated, truncated, final_obs)

`state` is an `EnvState`: the physics tensor [N, D] (laid out exactly like gymnasium's
`env.unwrapped.state`, so the two can be synced) and the step count of the current episode [N]
(the TimeLimit). Nothing is held in Python objects, so a loop over `step` compiles whole into
one `tf.function` (with `jit_compile=True` too).

Auto-reset convention (same step):
    The step that ends an episode (terminated or truncated) returns that transition's reward and
    flags, `final_obs` = the observation the episode ended in, and `obs` = the first observation
    of the next episode, already reset inside this same step (its step count is back to 0). For
    envs whose episode goes on, `obs` and `final_obs` are equal. So `obs` is always what to act on
    next, and `final_obs` is the s' of the transition (for bootstrapping through a truncation).
    This is gymnasium's `AutoresetMode.SAME_STEP` with `final_obs` as a dense [N, obs_dim] tensor
    instead of `infos["final_obs"]`. It differs from gymnasium's default NEXT_STEP mode, where the
    ending step returns the final observation as `obs` and the *following* step is a reset that
    ignores its action and returns reward 0: here there is no such dummy step, every step is a
    real transition.

Random numbers: keys are int32 tensors of shape [2] (XLA accepts only int32 seeds), used with
`tf.random.stateless_*`. `step` takes the key that draws the reset states of the envs whose
episode ends in that step; the caller splits a fresh key per step (`split_key`, `key_sequence`). The same key
sequence gives the same rollout, bit for bit.
"""
from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import numpy as np
import tensorflow as tf

# One named algorithm everywhere: with the default "auto_select" the plain graph and an XLA
# compilation may pick different generators, and the same key would give other numbers.
RNG_ALG = "philox"


class EnvState(NamedTuple):
    """Everything that changes over a batch of N envs."""

    physics: tf.Tensor  # [N, D] in the env's dtype, laid out like gymnasium's `unwrapped.state`
    steps: tf.Tensor    # [N] int32: steps taken in the current episode (0 right after a reset)


class StepOutput(NamedTuple):
    """One step of N envs with same-step auto-reset (see the module docstring)."""

    state: EnvState
    obs: tf.Tensor         # [N, obs_dim] float32: what to act on next (a reset obs where an episode ended)
    reward: tf.Tensor      # [N] float32: reward of this transition
    terminated: tf.Tensor  # [N] bool: the MDP reached a terminal state (no future value)
    truncated: tf.Tensor   # [N] bool: the time limit ended the episode (bootstrap from final_obs)
    final_obs: tf.Tensor   # [N, obs_dim] float32: the observation this transition ended in


def make_key(seed: int) -> tf.Tensor:
    """An int32 [2] key for `tf.random.stateless_*` from a non-negative Python int (up to 62 bits)."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return tf.constant([seed & 0x7FFFFFFF, (seed >> 31) & 0x7FFFFFFF], dtype=tf.int32)


def split_key(key: tf.Tensor, num: int = 2) -> tuple[tf.Tensor, ...]:
    """`num` new independent keys derived from `key`, as a tuple (unpackable inside a tf.function
    too); `key` itself should not be used again."""
    return tuple(tf.unstack(tf.random.split(key, num=num, alg=RNG_ALG), num=num))


def key_sequence(key: tf.Tensor, length) -> tf.Tensor:
    """[length, 2]: one independent key per row, e.g. one per step for `tf.scan` / `tf.while_loop`."""
    return tf.random.split(key, num=length, alg=RNG_ALG)


def uniform_rows(key: tf.Tensor, n, low, high, dtype) -> tf.Tensor:
    """[n, D] samples, column j uniform on [low[j], high[j]), as numpy's `uniform(low, high)` draws."""
    low = tf.constant(low, dtype=dtype)
    high = tf.constant(high, dtype=dtype)
    return low + (high - low) * unit_uniform(key, tf.stack([n, tf.size(low)]), dtype)


def unit_uniform(key: tf.Tensor, shape, dtype) -> tf.Tensor:
    """U[0, 1) with the given shape: the top 24 (float32) or 53 (float64) bits of random integers,
    scaled by 2^-24 or 2^-53, so every value is exact and the largest is 1 - ulp.

    Made from integers because TF's float generator and its XLA compilation turn the same key into
    different floats (checked with TF 2.21 on CPU), while their integer streams agree bit for bit.
    """
    if dtype == tf.float32:
        bits = tf.random.stateless_uniform(shape, seed=key, minval=None, maxval=None, dtype=tf.uint32, alg=RNG_ALG)
        return tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32)), tf.float32) * 2.0**-24
    bits = tf.random.stateless_uniform(shape, seed=key, minval=None, maxval=None, dtype=tf.uint64, alg=RNG_ALG)
    return tf.cast(tf.bitwise.right_shift(bits, tf.constant(11, tf.uint64)), tf.float64) * 2.0**-53


class GraphEnv:
    """Base of the in-graph envs: subclasses give the physics, this class the episode logic.

    A subclass defines `env_id`, `max_episode_steps`, `observation_space`, `action_space` (the
    gymnasium spaces, equal to `gym.make(env_id)`'s) and three pure functions on batches:
    `initial_physics(key, n)`, `dynamics(physics, action) -> (next_physics, reward, terminated)`
    and `observe(physics) -> obs`. `dtype` is the float type the physics runs in: float32 for
    speed; float64 reproduces gymnasium's float64 arithmetic (used by the tests to check the
    equations apart from rounding). Observations and rewards are float32 either way.
    """

    env_id: str
    max_episode_steps: int
    observation_space: gym.spaces.Box
    action_space: gym.spaces.Space

    def __init__(self, dtype: tf.DType = tf.float32):
        if dtype not in (tf.float32, tf.float64):
            raise ValueError(f"dtype must be tf.float32 or tf.float64, got {dtype}")
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env_id}, dtype={self.dtype.name})"

    # --- supplied by each env -------------------------------------------------------------
    def initial_physics(self, key: tf.Tensor, n) -> tf.Tensor:
        raise NotImplementedError

    def dynamics(self, physics: tf.Tensor, action: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        raise NotImplementedError

    def observe(self, physics: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------
    def state_from_physics(self, physics, steps=None) -> EnvState:
        """An EnvState from physics rows (e.g. gymnasium's `unwrapped.state` values); steps default 0."""
        physics = tf.convert_to_tensor(physics, dtype=self.dtype)
        if steps is None:
            steps = tf.zeros(tf.shape(physics)[:1], dtype=tf.int32)
        return EnvState(physics, tf.convert_to_tensor(steps, dtype=tf.int32))

    def reset(self, key: tf.Tensor, n) -> tuple[EnvState, tf.Tensor]:
        """Start N fresh episodes drawn from gymnasium's initial-state distribution."""
        state = self.state_from_physics(self.initial_physics(key, n))
        return state, self.observe(state.physics)

    def step(self, state: EnvState, action: tf.Tensor, key: tf.Tensor) -> StepOutput:
        """Advance every env one step; envs whose episode ends are reset in this same step.

        truncated = (steps + 1 >= max_episode_steps), as gymnasium's TimeLimit (it can be set
        together with terminated). The reset states come from `key` (`reset_physics`) and are
        selected with `tf.where`, so the graph has no data-dependent shapes.
        """
        next_physics, reward, terminated = self.dynamics(state.physics, action)
        steps = state.steps + 1
        truncated = steps >= self.max_episode_steps
        done = terminated | truncated
        physics = tf.where(done[:, None], self.reset_physics(done, key), next_physics)
        steps = tf.where(done, tf.zeros_like(steps), steps)
        final_obs = self.observe(next_physics)
        obs = tf.where(done[:, None], self.observe(physics), final_obs)
        return StepOutput(EnvState(physics, steps), obs, tf.cast(reward, tf.float32), terminated, truncated,
                          final_obs)

    def reset_physics(self, done: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
        """[N, D]: fresh initial physics in the rows where `done` (other rows: anything).

        The random draws cost more than the physics (CartPole: 4 uniforms per env vs a dozen
        flops), and few envs end in a given step, so the done rows take, in order, the rows of a
        pool of ceil(N / 8) draws; only when more envs than that end at once are N drawn.
        """
        n = done.shape[0] if done.shape[0] is not None else tf.shape(done)[0]   # static when known:
        pool_size = (n + 7) // 8                                                  # a while_loop keeps shapes
        rank = tf.cumsum(tf.cast(done, tf.int32)) - 1         # k-th ending env takes pool row k
        return tf.cond(rank[-1] < pool_size,
                       lambda: tf.gather(self.initial_physics(key, pool_size), tf.clip_by_value(rank, 0, pool_size - 1)),
                       lambda: self.initial_physics(key, n))

    def sample_actions(self, key: tf.Tensor, n) -> tf.Tensor:
        """N uniformly random actions from the action space (int32 [N] or float32 [N, *shape])."""
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return tf.random.stateless_uniform(tf.reshape(n, [1]), seed=key, minval=int(space.start),
                                               maxval=int(space.start + space.n), dtype=tf.int32,
                                               alg=RNG_ALG)
        shape = tf.concat([tf.reshape(n, [1]), tf.constant(space.shape, tf.int32)], axis=0)
        low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
        return low + (high - low) * unit_uniform(key, shape, tf.float32)

    def _float(self, action: tf.Tensor) -> tf.Tensor:
        """A continuous [N, 1] action as the [N] scalar the dynamics use, in the physics dtype."""
        return tf.cast(tf.reshape(action, [-1]), self.dtype)


def round_to_float32(x: tf.Tensor) -> tf.Tensor:
    """x rounded to the nearest float32 value, kept in x's dtype (a no-op for float32 x)."""
    return tf.cast(tf.cast(x, tf.float32), x.dtype)
