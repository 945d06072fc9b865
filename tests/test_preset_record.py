"""Every field of every preset's resolved configuration, and of each algorithm's no-flag run, is recorded.

`tests/fixtures/preset_configs.json` holds `build_config(...).to_dict()` for each preset and for
`train.py --algo A` on the default env: every field, compared both ways. A change of a default that
would move a preset, a field added or dropped, or a preset edited by mistake fails here. A change made
on purpose is re-recorded, with its reason in the commit, by:

    python tests/test_preset_record.py --write
"""
import json
import pathlib
import sys

import pytest

from tfpg.algos import REGISTRY, presets
from tfpg.config.run import build_config

RECORD = pathlib.Path(__file__).parent / "fixtures" / "preset_configs.json"


def resolved() -> dict:
    return {"presets": {name: build_config(None, None, name, {}).to_dict() for name in sorted(presets())},
            "no_flags": {algo: build_config(algo, None, None, {}).to_dict() for algo in sorted(REGISTRY)}}


RECORDED = json.loads(RECORD.read_text()) if RECORD.exists() else {"presets": {}, "no_flags": {}}


def test_the_record_names_every_preset_and_algorithm():
    assert sorted(RECORDED["presets"]) == sorted(presets())
    assert sorted(RECORDED["no_flags"]) == sorted(REGISTRY)


@pytest.mark.parametrize("name", sorted(RECORDED["presets"]))
def test_preset_resolves_to_its_recorded_config_field_for_field(name):
    assert build_config(None, None, name, {}).to_dict() == RECORDED["presets"][name]


@pytest.mark.parametrize("algo", sorted(RECORDED["no_flags"]))
def test_no_flag_run_resolves_to_its_recorded_config_field_for_field(algo):
    assert build_config(algo, None, None, {}).to_dict() == RECORDED["no_flags"][algo]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: python {sys.argv[0]} --write   (re-records {RECORD})")
    RECORD.write_text(json.dumps(resolved(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORD}")
