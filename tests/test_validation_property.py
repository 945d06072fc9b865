"""Property test: random configurations thrown at the validator give a valid config or a ConfigError,
never any other exception (the CLI turns ConfigError into one line and exit status 2)."""
import dataclasses
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfpg.algos import config_classes, presets
from tfpg.training.checks import check_run
from tfpg.config.run import build_config, validate
from tfpg.core.errors import ConfigError

FIELDS = sorted({f.name for cls in config_classes().values() for f in dataclasses.fields(cls)} - {"algo"})

# Values of every kind a flag, a preset or a resumed config.json could carry.
ANY_VALUE = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-2**40, max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, -1, 0.5, 1e-3, 1e9, math.nan, math.inf]),
    st.text(max_size=12),
    st.sampled_from(["CartPole-v1", "CartPol-v1", "LunarLanderContinuous-v3", "Pendulum-v1", "ALE/Nope-v5",
                     "reward_to_go", "nstep", "lambda", "critic", "linear", "eval", "train", "sync", "async",
                     "gaussian", "categorical", "huber", "exponential", "minibatch", "../x", "", ".", "a/b"]),
    st.tuples(st.integers(-3, 300)), st.lists(st.integers(-3, 300), max_size=3).map(tuple),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

overrides = st.dictionaries(st.sampled_from(FIELDS), ANY_VALUE, max_size=6)
algo = st.sampled_from([None, *config_classes(), "sac", ""])
env = st.sampled_from([None, "CartPole-v1", "LunarLanderContinuous-v3", "CartPol-v1", "MountainCar-v0"])
preset = st.sampled_from([None, *presets(), "nope"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(algo=algo, env=env, preset=preset, overrides=overrides)
def test_validator_gives_a_config_or_a_clear_error(algo, env, preset, overrides):
    try:
        config = build_config(algo, env, preset, overrides)
    except ConfigError as e:
        message = str(e)
        assert message and "\n" not in message and "Traceback" not in message
        return
    validate(config)    # what passed once passes again (e.g. a resumed run's saved config)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(algo=algo, env=env, overrides=st.dictionaries(
    st.sampled_from(["num_envs", "hidden", "lr", "policy", "env_id", "run_name", "total_steps"]), ANY_VALUE,
    max_size=3))
def test_checks_before_training_give_a_clear_error(tmp_path_factory, algo, env, overrides):
    """Everything up to the first env step: config, env id, action space vs policy, output folders."""
    tmp = tmp_path_factory.mktemp("v")
    try:
        config = build_config(algo, env, None, {**overrides, "logdir": str(tmp / "runs"),
                                                "export_dir": str(tmp / "models")})
        check_run(config)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
    assert not (tmp / "runs").exists() and not (tmp / "models").exists()   # nothing created
