"""The in-graph classic-control envs (tfpg.envs.graph) against gymnasium 1.4's own.

Tolerances (absolute). The TF envs run their physics in float32 by default; gymnasium runs
CartPole, Acrobot, MountainCar and Pendulum in float64 and returns float32 observations, and
MountainCarContinuous in float32 arithmetic (its state is stored as float32). So:
- float64 mode reproduces gymnasium's arithmetic: observations agree to 1e-9 over whole free
  episodes (they are in fact bit-equal here; the margin is for other libm/CPU builds), episode
  ends exactly. MountainCarContinuous is the exception: gymnasium's float32 arithmetic rounds
  differently from ours (cos in double, then rounded), a float32 ulp (6e-8) a step, 1e-5 over 999 steps.
- float32 mode, one step from the gymnasium state: a few float32 ulps of the values, 1e-6 for
  observations of size ~1; Acrobot 4e-6 (its velocities reach 9 pi = 28, where an ulp is 1.9e-6);
  Pendulum 1e-5 (its angle is not wrapped: after a few spins |theta| ~ 100, where an ulp is 7.6e-6,
  and cos/sin inherit that), reward 1e-4 (the cost squares the angle and the velocity).
- float32 mode, free runs: the per-step rounding compounds (Pendulum near the top and Acrobot are
  unstable, so it grows geometrically), so the TF state is re-synced from gymnasium's every 25
  steps and the error measured over each 25-step stretch: 1e-4 (seen: <= 1e-5), Pendulum 1e-3
  (seen: 8e-5), reward 2e-3 (seen: 3e-4).
Episode ends (terminated/truncated) must agree exactly in every mode.
"""
from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from tfpg.envs.graph import GRAPH_ENVS, EnvState, has_graph_env, key_sequence, make, make_key, split_key


class Tolerance(NamedTuple):
    step_obs: float
    step_reward: float
    free_obs: float
    free_reward: float


FLOAT32 = {
    "CartPole-v1": Tolerance(1e-6, 1e-6, 1e-4, 1e-6),
    "Acrobot-v1": Tolerance(4e-6, 1e-6, 1e-4, 1e-6),
    "MountainCar-v0": Tolerance(1e-6, 1e-6, 1e-4, 1e-6),
    "MountainCarContinuous-v0": Tolerance(1e-6, 1e-6, 1e-4, 1e-6),
    "Pendulum-v1": Tolerance(1e-5, 1e-4, 1e-3, 2e-3),
}
FLOAT64 = {env_id: Tolerance(1e-9, 1e-5, 1e-9, 1e-5) for env_id in GRAPH_ENVS}  # rewards are float32
FLOAT64["MountainCarContinuous-v0"] = Tolerance(1e-6, 1e-5, 1e-5, 1e-5)
ENV_IDS = list(GRAPH_ENVS)
DTYPES = {"float32": (tf.float32, FLOAT32), "float64": (tf.float64, FLOAT64)}


def gym_physics(env: gym.Env) -> np.ndarray:
    return np.asarray(env.unwrapped.state, dtype=np.float64)


def action_sampler(space: gym.Space, seed: int):
    """Random actions; continuous ones from 1.5 times the box, so that the envs' clipping is used
    (policies such as a Gaussian hand the env unclipped actions)."""
    if isinstance(space, gym.spaces.Discrete):
        space.seed(seed)
        return space.sample
    rng = np.random.default_rng(seed)
    return lambda: rng.uniform(1.5 * space.low, 1.5 * space.high).astype(np.float32)


def record_gym_steps(env_id: str, num_steps: int, seed: int) -> dict:
    """gymnasium's own random-action run: the state and episode step count before each step, the
    action, what the step returned and the state after it (before any reset)."""
    env = gym.make(env_id)
    sample_action = action_sampler(env.action_space, seed)
    env.reset(seed=seed)
    rows = {k: [] for k in ("physics", "steps", "action", "obs", "reward", "terminated", "truncated", "next_physics")}
    episode_steps = 0
    for _ in range(num_steps):
        rows["physics"].append(gym_physics(env))
        rows["steps"].append(episode_steps)
        action = sample_action()
        obs, reward, terminated, truncated, _ = env.step(action)
        rows["next_physics"].append(gym_physics(env))
        for k, v in zip(("action", "obs", "reward", "terminated", "truncated"),
                        (action, obs, reward, terminated, truncated), strict=True):
            rows[k].append(v)
        episode_steps += 1
        if terminated or truncated:
            env.reset()
            episode_steps = 0
    return {k: np.asarray(v) for k, v in rows.items()}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_and_limits_match_gymnasium(env_id):
    genv, env = make(env_id), gym.make(env_id)
    assert genv.observation_space == env.observation_space
    assert genv.action_space == env.action_space
    assert genv.max_episode_steps == env.spec.max_episode_steps
    actions = genv.sample_actions(make_key(3), 500).numpy()
    assert all(env.action_space.contains(a) for a in actions)
    _, obs = genv.reset(make_key(4), 500)
    assert obs.dtype == tf.float32 and all(env.observation_space.contains(o) for o in obs.numpy())


@pytest.mark.parametrize("dtype_name,jit_compile", [("float32", False), ("float64", False), ("float32", True)])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_one_step_from_gymnasium_states(env_id, dtype_name, jit_compile):
    """3000 gymnasium steps, each replayed by the TF step from the same state and step count
    (all as one batch of 3000 envs): next observation, reward, terminated, truncated, and the next
    physics state itself (Acrobot's angle wrapping is not visible in its cos/sin observation). The XLA
    compiled step is held to the same tolerance."""
    dtype, tolerances = DTYPES[dtype_name]
    tol = tolerances[env_id]
    rec = record_gym_steps(env_id, 3000, seed=11)
    genv = make(env_id, dtype)
    step = tf.function(genv.step, jit_compile=jit_compile)
    out = step(genv.state_from_physics(rec["physics"], rec["steps"]), tf.constant(rec["action"]), make_key(0))
    np.testing.assert_allclose(out.final_obs.numpy(), rec["obs"], rtol=0, atol=tol.step_obs)
    np.testing.assert_allclose(out.reward.numpy(), rec["reward"], rtol=0, atol=tol.step_reward)
    np.testing.assert_array_equal(out.terminated.numpy(), rec["terminated"])
    np.testing.assert_array_equal(out.truncated.numpy(), rec["truncated"])
    assert rec["terminated"].any() or rec["truncated"].any()
    going_on = ~(rec["terminated"] | rec["truncated"])      # the others' state is already a reset one
    np.testing.assert_allclose(out.state.physics.numpy()[going_on], rec["next_physics"][going_on], rtol=0,
                               atol=tol.step_obs)


def run_free(env_id: str, dtype, num_steps: int, seed: int, resync_every: int | None) -> dict:
    """TF env (batch 1) and gymnasium in lockstep on the same random actions. At each episode end
    the TF env resets itself (in graph) and gymnasium is set to the TF reset state; every
    `resync_every` steps the TF state is set to gymnasium's (None: never)."""
    genv, env = make(env_id, dtype), gym.make(env_id)
    sample_action = action_sampler(env.action_space, seed)
    @tf.function
    def step(state, action, key):
        step_key, next_key = split_key(key)
        return genv.step(state, action, step_key), next_key

    reset_key, key = split_key(make_key(seed))
    state, _ = genv.reset(reset_key, 1)
    env.reset(seed=seed)
    env.unwrapped.state = state.physics.numpy()[0].astype(np.float64)
    worst = {"obs": 0.0, "reward": 0.0, "flag_mismatches": 0, "episodes": 0}
    for t in range(num_steps):
        if resync_every and t % resync_every == 0:
            state = genv.state_from_physics(gym_physics(env)[None], state.steps)
        action = sample_action()
        out, key = step(state, np.asarray(action)[None], key)
        state = out.state
        tf_obs, tf_reward, tf_terminated, tf_truncated = (out.final_obs.numpy()[0], out.reward.numpy()[0],
                                                          out.terminated.numpy()[0], out.truncated.numpy()[0])
        obs, reward, terminated, truncated, _ = env.step(action)
        worst["obs"] = max(worst["obs"], float(np.abs(tf_obs - obs).max()))
        worst["reward"] = max(worst["reward"], abs(float(tf_reward) - reward))
        worst["flag_mismatches"] += (bool(tf_terminated), bool(tf_truncated)) != (terminated, truncated)
        if terminated or truncated:
            worst["episodes"] += 1
            assert state.steps.numpy()[0] == 0
            env.reset()
            env.unwrapped.state = state.physics.numpy()[0].astype(np.float64)
    return worst


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_free_run_matches_gymnasium(env_id, dtype_name):
    """2000 lockstep steps across episode ends; float64 runs whole episodes free, float32 re-syncs
    every 25 steps (see the module docstring)."""
    dtype, tolerances = DTYPES[dtype_name]
    tol = tolerances[env_id]
    worst = run_free(env_id, dtype, 2000, seed=5, resync_every=25 if dtype == tf.float32 else None)
    assert worst["flag_mismatches"] == 0
    assert worst["episodes"] >= 2
    assert worst["obs"] <= tol.free_obs, worst
    assert worst["reward"] <= tol.free_reward, worst


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_time_limit_resets_in_the_same_step(env_id):
    """An env at its last allowed step is truncated and reset in that step: step count 0, obs = a
    fresh episode's first obs (from the step's key), final_obs = where it ended; the others go on."""
    genv = make(env_id)
    state, _ = genv.reset(make_key(1), 4)
    steps = tf.constant([genv.max_episode_steps - 1, 0, 7, genv.max_episode_steps - 1], tf.int32)
    state = EnvState(state.physics, steps)
    actions, key = genv.sample_actions(make_key(2), 4), make_key(3)
    out = genv.step(state, actions, key)
    next_physics, _, terminated = genv.dynamics(state.physics, actions)
    assert not terminated.numpy().any()
    np.testing.assert_array_equal(out.truncated.numpy(), [True, False, False, True])
    np.testing.assert_array_equal(out.state.steps.numpy(), [0, 1, 8, 0])
    fresh = genv.reset_physics(out.truncated, key).numpy()
    np.testing.assert_array_equal(out.state.physics.numpy()[[0, 3]], fresh[[0, 3]])
    np.testing.assert_array_equal(out.state.physics.numpy()[[1, 2]], next_physics.numpy()[[1, 2]])
    np.testing.assert_array_equal(out.final_obs.numpy(), genv.observe(next_physics).numpy())
    np.testing.assert_array_equal(out.obs.numpy(), genv.observe(out.state.physics).numpy())


@pytest.mark.parametrize("env_id,physics,action", [
    ("CartPole-v1", [2.39, 1.0, 0.0, 0.0], 1),                        # cart leaves the track
    ("Acrobot-v1", [np.pi, 0.0, 0.0, 0.0], 1),                        # already swung up
    ("MountainCar-v0", [0.49, 0.05], 2),                               # reaches the flag
    ("MountainCarContinuous-v0", [0.44, 0.05], [1.0]),
])
def test_termination_resets_in_the_same_step(env_id, physics, action):
    genv = make(env_id)
    other = genv.initial_physics(make_key(0), 1).numpy()[0]
    state = genv.state_from_physics(np.array([physics, other], dtype=np.float32), [37, 37])
    out = genv.step(state, tf.constant([action, action]), make_key(9))
    np.testing.assert_array_equal(out.terminated.numpy(), [True, False])
    np.testing.assert_array_equal(out.state.steps.numpy(), [0, 38])
    assert genv.observation_space.contains(out.obs.numpy()[0])
    assert not np.allclose(out.obs.numpy()[0], out.final_obs.numpy()[0])     # final obs kept apart
    np.testing.assert_array_equal(out.obs.numpy()[1], out.final_obs.numpy()[1])


@pytest.mark.parametrize("num_done", [1, 8, 9, 64])
def test_reset_rows_are_distinct_fresh_draws(num_done):
    """Up to N/8 ending envs take rows of a small pool, more take a full draw: either way each
    gets its own draw from the initial box."""
    genv = make("CartPole-v1")
    done = tf.constant(np.arange(64) < num_done)
    rows = genv.reset_physics(done, make_key(5)).numpy()[:num_done]
    assert len({tuple(r) for r in rows}) == num_done
    assert (np.abs(rows) <= 0.05).all()


@pytest.mark.parametrize("env_id,low,high", [
    ("CartPole-v1", [-0.05] * 4, [0.05] * 4),
    ("Acrobot-v1", [-0.1] * 4, [0.1] * 4),
    ("MountainCar-v0", [-0.6, 0.0], [-0.4, 0.0]),
    ("MountainCarContinuous-v0", [-0.6, 0.0], [-0.4, 0.0]),
    ("Pendulum-v1", [-np.pi, -1.0], [np.pi, 1.0]),
])
def test_initial_state_distribution(env_id, low, high):
    """Uniform on gymnasium's box: all draws inside, min/max near the ends, mean near the middle."""
    physics = make(env_id).initial_physics(make_key(6), 20_000).numpy().astype(np.float64)
    low, high = np.array(low), np.array(high)
    width = high - low
    assert (physics >= low).all() and (physics <= high).all()
    np.testing.assert_allclose(physics.min(0), low, atol=1e-3 * width.max())
    np.testing.assert_allclose(physics.max(0), high, atol=1e-3 * width.max())
    np.testing.assert_allclose(physics.mean(0), (low + high) / 2, atol=0.02 * width.max())


def random_rollout(env, key, num_envs: int, num_steps: int):
    """num_steps random-action steps of num_envs envs in one tf.scan; stacked StepOutputs but state."""
    reset_key, key = split_key(key)
    state, obs = env.reset(reset_key, num_envs)

    def one_step(carry, step_key):
        state = carry[0]
        action_key, env_key = split_key(step_key)
        out = env.step(state, env.sample_actions(action_key, num_envs), env_key)
        return (out.state, out.obs, out.reward, out.terminated, out.truncated, out.final_obs)

    first = (state, obs, tf.zeros([num_envs]), tf.zeros([num_envs], tf.bool), tf.zeros([num_envs], tf.bool), obs)
    outs = tf.scan(one_step, key_sequence(key, num_steps), initializer=first)
    return outs[1:]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_key_same_rollout_other_key_other_rollout(env_id):
    genv = make(env_id)
    rollout = tf.function(lambda key: random_rollout(genv, key, 8, 300))
    first, again, other = rollout(make_key(7)), rollout(make_key(7)), rollout(make_key(8))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(first[0].numpy(), other[0].numpy())


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_xla_compiled_rollout_equals_graph_rollout(env_id):
    """A jit_compile=True rollout (random actions and resets drawn in graph) follows the plain
    graph's: the same random numbers, the same episode ends, and observations and rewards equal up
    to float32 rounding (XLA fuses differently) compounded over 100 steps: 1e-3 (Pendulum, the
    least stable, drifts ~2e-4 by then)."""
    genv = make(env_id)
    plain = tf.function(lambda key: random_rollout(genv, key, 16, 100))
    compiled = tf.function(lambda key: random_rollout(genv, key, 16, 100), jit_compile=True)
    a, b = plain(make_key(2)), compiled(make_key(2))
    names = ("obs", "reward", "terminated", "truncated", "final_obs")
    for name, x, y in zip(names, a, b, strict=True):
        if x.dtype == tf.bool:
            np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=name)
        else:
            np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=0, atol=1e-3, err_msg=name)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_envs_in_a_batch_are_independent(env_id):
    """Each row of a batched step equals that env stepped alone, and the rows of a reset differ."""
    genv = make(env_id)
    state, _ = genv.reset(make_key(1), 6)
    state = EnvState(state.physics, tf.constant([0, 3, 5, 9, 2, 1], tf.int32))
    actions = genv.sample_actions(make_key(2), 6)
    batched = genv.step(state, actions, make_key(3))
    for i in range(6):
        alone = genv.step(EnvState(state.physics[i:i + 1], state.steps[i:i + 1]), actions[i:i + 1], make_key(3))
        np.testing.assert_allclose(alone.final_obs.numpy()[0], batched.final_obs.numpy()[i], rtol=0, atol=1e-6)
        np.testing.assert_allclose(alone.reward.numpy()[0], batched.reward.numpy()[i], rtol=0, atol=1e-6)
        assert alone.terminated.numpy()[0] == batched.terminated.numpy()[i]
    assert len({tuple(row) for row in state.physics.numpy()}) == 6


@pytest.mark.parametrize("num_envs", [1, 32])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_keeps_static_shapes(env_id, num_envs):
    """Inside a tf.function every output of step has the input's static shape (tf.while_loop
    refuses loop variables whose shape changes)."""
    genv = make(env_id)
    state, _ = genv.reset(make_key(0), num_envs)
    actions = genv.sample_actions(make_key(1), num_envs)
    traced = []
    tf.function(lambda s, a, k: traced.append(genv.step(s, a, k))).get_concrete_function(state, actions, make_key(2))
    out = traced[0]
    assert all(x.shape.is_fully_defined() for x in tf.nest.flatten(out))
    assert out.state.physics.shape == state.physics.shape and out.obs.shape[0] == num_envs


def test_registry():
    assert set(GRAPH_ENVS) == {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
                               "Pendulum-v1"}
    assert has_graph_env("CartPole-v1") and not has_graph_env("LunarLander-v3")
    assert make("Pendulum-v1", tf.float64).dtype == tf.float64
    with pytest.raises(KeyError, match="CartPole-v1"):
        make("LunarLander-v3")
