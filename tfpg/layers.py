"""tfpg's architecture as data: its sub-packages in layers, from the bottom up.

A module may import the modules of its own package and of any package in a lower layer; packages of
the same layer do not import each other. `tests/test_layers.py` enforces this on every import of every
module (imports inside functions too) and refuses any cycle; the Design page of the docs draws it.
The modules directly in `tfpg/` (the package's face and the `python -m` entry points) form the top.
"""
from __future__ import annotations

# (package, what it holds), layer by layer from the bottom; a tuple of several packages is one layer.
LAYERS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("tfpg.core", "errors, TensorFlow's quiet start-up, run-folder files, the checkpoint file format"),),
    (("tfpg.config", "options declared once (flag, help, bounds) and the config dataclasses every algorithm shares"),
     ("tfpg.maths", "returns, GAE, losses, the natural gradient, schedules: numpy and TensorFlow, no networks")),
    (("tfpg.envs", "building gymnasium envs (Atari too), the stepping core, envs written as TensorFlow ops"),),
    (("tfpg.models", "networks, policies over tfp distributions, observation and reward normalisation, baselines"),),
    (("tfpg.experience", "collectors (episodes, n-step windows, fixed horizons, transitions) and replay buffers"),
     ("tfpg.backends.graph", "the graph backend's pieces: K stacked agents, the in-graph collector"),
     ("tfpg.backends.ray", "rollout workers on Ray actors, each building the algorithm it is named"),
     ("tfpg.export", "SavedModel export and loading, LiteRT and ONNX conversion")),
    (("tfpg.algos", "the algorithm contract, its opt-in capabilities, one folder per algorithm, the registry"),),
    (("tfpg.training", "the training loop (gym and graph trainers on one base), checks, checkpoints, "
                       "evaluation, logging, signals"),),
    (("tfpg.api", "the Python API: an agent class per algorithm, learn/predict/save/load/export, train"),),
    (("tfpg.cli", "the command lines: train, evaluate, docs"),),
)
TOP = "tfpg"   # the modules directly in tfpg/: may import every layer


def layer_of(module: str) -> int:
    """The index in LAYERS of the package `module` belongs to (len(LAYERS) for the top), or -1 if none."""
    best, index = "", -1
    for i, layer in enumerate(LAYERS):
        for package, _ in layer:
            if (module == package or module.startswith(package + ".")) and len(package) > len(best):
                best, index = package, i
    if index < 0 and module.count(".") == 1 and module.startswith(TOP + ".") or module == TOP:
        return len(LAYERS)
    return index


def package_of(module: str) -> str | None:
    """The LAYERS package `module` belongs to (the longest that contains it), or None."""
    matches = [p for layer in LAYERS for p, _ in layer if module == p or module.startswith(p + ".")]
    return max(matches, key=len) if matches else None
