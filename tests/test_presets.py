"""Every preset runs; the presets that reproduce a source keep its hyperparameters."""
import json
import pathlib

import pytest

from tfpg.training.checks import prepare_paths
from tfpg.training.trainer import train
from tfpg.algos import presets
from tfpg.config.run import build_config

PRESETS = presets()

# What each seed document specifies (REFERENCE.md). Changing a value here needs a reason.
PINNED = {
    "book-cartpole-reinforce": dict(algo="reinforce", env_id="CartPole-v1", hidden=(128,), lr=0.01, gamma=0.99,
                                       episodes_per_update=4, returns="reward_to_go", baseline="none",
                                       normalize=False, num_envs=1, entropy_beta=0.0),
    "book-cartpole-pg": dict(algo="reinforce", env_id="CartPole-v1", hidden=(128,), lr=0.001, gamma=0.99,
                                returns="nstep", n_steps=10, steps_per_update=8, baseline="mean",
                                entropy_beta=0.01, normalize=False, num_envs=1),
    "fastcampus-batch-reinforce": dict(algo="reinforce", env_id="CartPole-v1", hidden=(128,), gamma=1.0,
                                    episodes_per_update=2, update="batch", normalize=True, baseline="none",
                                    num_envs=1),
    "gaussian-pg-lunarlander": dict(algo="reinforce", env_id="LunarLanderContinuous-v3", policy="gaussian",
                                hidden=(32, 32), activation="relu", log_std_init=0.0, gamma=0.97,
                                steps_per_update=3000, baseline="linear", normalize=True, lr=1e-3,
                                normalize_obs=False, entropy_beta=0.0, reuse_epochs=1, update="batch"),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_seed_presets_keep_their_sources_hyperparameters(name):
    config = build_config(None, None, name, {})
    for key, value in PINNED[name].items():
        assert getattr(config, key) == value, (name, key)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_end_to_end(tmp_path, name):
    config = build_config(None, None, name, dict(total_steps=400, progress=False, logdir=str(tmp_path),
                                                 export_dir=str(tmp_path / "models"), run_name="p",
                                                 num_envs=min(PRESETS[name].overrides.get("num_envs", 1), 4)))
    result = train(config, *prepare_paths(config))
    assert result.env_steps >= 400
    assert (tmp_path / "models" / "p" / "saved_model.pb").exists()


@pytest.mark.parametrize("old, new", [("seed000-cartpole-reinforce", "book-cartpole-reinforce"),
                                      ("seed001-dqn-cartpole", "hwang-dqn-cartpole"),
                                      ("dqn-pong", "zoo-dqn-pong")])
def test_old_preset_names_still_work_with_a_one_line_notice(capsys, old, new):
    config = build_config(None, None, old, {})
    assert config.to_dict() == build_config(None, None, new, {}).to_dict()
    notice = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert notice == [f"train.py: note: preset {old!r} is now called {new!r}; the old name will be removed"]


def test_every_preset_cites_a_source_outside_this_repository():
    for preset in PRESETS.values():
        assert "REFERENCE.md" not in preset.source and "seed00" not in preset.name, preset.name
        assert len(preset.source) > 20


# Every preset's config as main resolved it before the fallback defaults became the robust ones
# (tests/fixtures/resolved_presets.json, written once from that commit; the actor-critic presets and
# cartpole-reinforce-graph, which came later, were added from commit 7bfed2a, before the actor-critics'
# fallback defaults changed): the presets must keep their settings when the dataclass defaults change.
# Fields added later (absent from the record) are not compared, so a preset states such a field's value
# itself where a default would change it (e.g. normalize_reward); every recorded one must still exist
# with its recorded value. A preset changed on purpose is re-recorded with the reason in its source:
# trpo-lunarlander-continuous (2026-12-06: rewards normalised as its zoo entry does, 8 envs x 512 steps).
RECORDED = json.loads((pathlib.Path(__file__).parent / "fixtures" / "resolved_presets.json").read_text())


@pytest.mark.parametrize("name", sorted(RECORDED["presets"]))
def test_presets_resolve_to_their_recorded_configs(name):
    resolved = build_config(None, None, name, {}).to_dict()
    assert {k: resolved.get(k, "<missing>") for k in RECORDED["presets"][name]} == RECORDED["presets"][name]


@pytest.mark.parametrize("algo", sorted(RECORDED["no_flags"]))
def test_no_flag_runs_resolve_to_their_recorded_default_presets(algo):
    """`train.py` and `train.py --algo A` on the default env still get the default preset's settings."""
    resolved = build_config(None if algo == "default" else algo, None, None, {}).to_dict()
    assert {k: resolved.get(k, "<missing>") for k in RECORDED["no_flags"][algo]} == RECORDED["no_flags"][algo]


# Options added after the record: every recorded preset keeps the value that reproduces its old behaviour.
ADDED_SINCE_RECORD = {"reinforce": {"critic_normalize": False}}


@pytest.mark.parametrize("name", sorted(RECORDED["presets"]))
def test_presets_keep_options_added_after_the_record_off(name):
    config = build_config(None, None, name, {})
    for key, value in ADDED_SINCE_RECORD.get(config.algo, {}).items():
        assert getattr(config, key) == value, (name, key)
