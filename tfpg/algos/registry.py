"""The one registry of algorithms (name -> Algorithm class) and resolving a run's configuration from it.

The CLI's --algo choices, the action-space check, --list-presets, the default presets and the docs'
tables all read it. Adding an algorithm is one folder and one `register(...)` line in
`tfpg/algos/__init__.py` (or a call of `register` from user code, before `tfpg.cli.train.main`).
Precedence when a run is configured: dataclass defaults < preset < explicit flags.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any

from tfpg.algos.base import Algorithm
from tfpg.config.options import unknown_choice
from tfpg.config.run import DEFAULT_ALGO, DEFAULT_ENV, Preset, RunConfig, validate, with_env_module
from tfpg.core.errors import ConfigError

REGISTRY: dict[str, type[Algorithm]] = {}


def register(algorithm: type[Algorithm]) -> type[Algorithm]:
    """Make `algorithm` available as --algo NAME (usable as a class decorator)."""
    REGISTRY[algorithm.name] = algorithm
    return algorithm


def presets() -> dict[str, Preset]:
    """Every registered algorithm's presets by name."""
    return {p.name: p for algorithm in REGISTRY.values() for p in algorithm.presets}


def config_classes() -> dict[str, type]:
    return {name: algorithm.config_class for name, algorithm in REGISTRY.items()}


def find_preset(name: str) -> Preset:
    """The preset called `name` (an old name gets a one-line notice on stderr), or ConfigError."""
    all_presets = presets()
    if name in all_presets:
        return all_presets[name]
    for preset in all_presets.values():
        if name in preset.replaces:
            print(f"train.py: note: preset {name!r} is now called {preset.name!r}; the old name will be removed",
                  file=sys.stderr)
            return preset
    raise ConfigError(unknown_choice("preset", name, all_presets) + " (list them with --list-presets)")


def default_preset(algo: str, env_id: str) -> Preset | None:
    return next((p for p in presets().values() if p.default and p.algo == algo and p.env_id == env_id),
                None)


def build_config(algo: str | None, env_id: str | None, preset: str | None, overrides: dict[str, Any]) -> RunConfig:
    """Resolve algo/env/preset/flags into one validated config object."""
    registry = REGISTRY
    chosen = find_preset(preset) if preset is not None else None
    if chosen is not None:
        if algo is not None and algo != chosen.algo:
            raise ConfigError(f"preset {chosen.name!r} is for --algo {chosen.algo}, not {algo}; drop one of the two "
                              "flags")
        algo = chosen.algo
    algo = algo or DEFAULT_ALGO
    if algo not in registry:
        raise ConfigError(unknown_choice("algorithm", algo, registry))
    if chosen is None:
        chosen = default_preset(algo, env_id or DEFAULT_ENV)
    values: dict[str, Any] = dict(chosen.overrides) if chosen is not None else {}
    if env_id is not None:
        values["env_id"] = env_id
    values.update({k: v for k, v in overrides.items() if v is not None})
    cls = registry[algo].config_class
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"--{unknown[0].replace('_', '-')} does not apply to --algo {algo}")
    config = cls(**{**values, "algo": algo})
    validate(config)
    config.check_given(given_options(overrides))
    return with_env_module(config)


def given_options(overrides: dict[str, Any]) -> frozenset[str]:
    """The field names of the options given as flags (argparse leaves the others None)."""
    return frozenset(k for k, v in overrides.items() if v is not None)
