"""tfpg's architecture holds: no import cycle, and every import follows the layers of tfpg/layers.py.

The checker (tests/layering.py) reads the source with `ast`; the synthetic packages below show that it finds
what it is meant to find: cycles hidden in function bodies or relative imports, imports up a layer, imports
between two packages of one layer, and modules outside every layer.
"""
from pathlib import Path

import pytest
from conftest import ROOT
from layering import (build_graph, check, cycle_messages, find_modules, layer_violations, package_of,
                      undeclared_modules)

from tfpg import layers as tfpg_layers

pytestmark = pytest.mark.unit


def _report(messages: list[str], what: str) -> str:
    return f"{len(messages)} {what}:\n" + "\n".join(messages)


# --- the real tfpg/ ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tfpg_graph():
    return build_graph(ROOT, "tfpg")


def test_tfpg_has_no_import_cycle(tfpg_graph):
    cycles = cycle_messages(tfpg_graph)
    assert not cycles, _report(cycles, "groups of tfpg modules import each other in a cycle")


def test_tfpg_imports_follow_the_layer_order(tfpg_graph):
    wrong = layer_violations(tfpg_graph, tfpg_layers.LAYERS, tfpg_layers.TOP)
    assert not wrong, _report(wrong, "imports go against the layers of tfpg/layers.py")


def test_every_tfpg_module_belongs_to_a_declared_layer(tfpg_graph):
    undeclared = undeclared_modules(tfpg_graph, tfpg_layers.LAYERS, tfpg_layers.TOP)
    assert not undeclared, _report(undeclared, "tfpg modules are in no layer of tfpg/layers.py")


def test_the_checker_places_each_tfpg_module_where_tfpg_layers_does(tfpg_graph):
    """tfpg.layers' own helpers (layer_of, package_of) and the checker place every module alike."""
    layers, top = tfpg_layers.LAYERS, tfpg_layers.TOP
    numbers = {p: i for i, layer in enumerate(layers) for p, _ in layer} | {top: len(layers)}
    for module in tfpg_graph.modules:
        package = package_of(module, layers, top)
        assert tfpg_layers.package_of(module) == (None if package == top else package), module
        assert tfpg_layers.layer_of(module) == numbers.get(package, -1), module


# --- the checker, on synthetic packages --------------------------------------------------------------------------

LAYERS = (
    (("pkg.low", "the bottom"),),
    (("pkg.left", "one side of the middle layer"), ("pkg.right", "its other side")),
    (("pkg.high", "the layer under the top"),),
)

CLEAN = {
    "pkg/__init__.py": "from pkg.high import b\n",
    "pkg/main.py": "import pkg.high.b as b\nfrom pkg import layers_doc\n",
    "pkg/layers_doc.py": "",
    "pkg/low/__init__.py": "from . import a\nfrom .a import VALUE\n\ndef f():\n    from pkg.low import VALUE\n",
    "pkg/low/a.py": "VALUE = 1\n",
    "pkg/low/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.low.a import VALUE\n",
    "pkg/left/__init__.py": "",
    "pkg/left/x.py": "from ..low import a\nimport pkg.low\n",
    "pkg/right/__init__.py": "",
    "pkg/right/z.py": "import importlib\n\ndef load():\n    return importlib.import_module('pkg.low.c')\n",
    "pkg/high/__init__.py": "",
    "pkg/high/b.py": "from pkg.left import x\nfrom pkg.right.z import load\n\ndef f():\n    from pkg.low import a\n",
}


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def violations(tmp_path, changes: dict[str, str] | None = None) -> dict[str, list[str]]:
    """check() on CLEAN with the files of `changes` added or replaced."""
    return check(write_package(tmp_path, CLEAN | (changes or {})), "pkg", LAYERS)


def test_a_clean_package_reports_nothing(tmp_path):
    assert violations(tmp_path) == {"cycles": [], "layer order": [], "undeclared": []}


def test_modules_and_edges_are_read_from_every_kind_of_import(tmp_path):
    graph = build_graph(write_package(tmp_path, CLEAN), "pkg")
    assert find_modules(tmp_path, "pkg")["pkg.low"] == "pkg/low/__init__.py"
    assert sorted(graph.edges()) == [
        ("pkg", "pkg.high.b"),                                            # from pkg.high import b: the module b
        ("pkg.high.b", "pkg.left.x"), ("pkg.high.b", "pkg.low.a"),        # ... and a function's import
        ("pkg.high.b", "pkg.right.z"),                                    # from pkg.right.z import load
        ("pkg.left.x", "pkg.low"), ("pkg.left.x", "pkg.low.a"),           # import pkg.low; from ..low import a
        ("pkg.low", "pkg.low"),                                           # an __init__ naming itself: no cycle
        ("pkg.low", "pkg.low.a"),                                         # from . import a; from .a import VALUE
        ("pkg.low.c", "pkg.low.a"),                                       # under if TYPE_CHECKING
        ("pkg.main", "pkg.high.b"), ("pkg.main", "pkg.layers_doc"),
        ("pkg.right.z", "pkg.low.c"),                                     # importlib.import_module("pkg.low.c")
    ]
    assert [i.line for i in graph.edges()["pkg.low", "pkg.low.a"]] == [1, 2]


def test_a_cycle_through_an_import_inside_a_function_is_reported(tmp_path):
    found = violations(tmp_path, {"pkg/low/a.py": "def later():\n    import pkg.low.c\n"})
    assert found["cycles"] == ["import cycle among 2 modules (pkg.low.a, pkg.low.c):\n"
                               "  pkg.low.a -> pkg.low.c -> pkg.low.a\n"
                               "    pkg/low/a.py:2: pkg.low.a imports pkg.low.c\n"
                               "    pkg/low/c.py:3: pkg.low.c imports pkg.low.a"]
    assert found["layer order"] == [] and found["undeclared"] == []    # inside one package: only a cycle


def test_a_cycle_of_relative_imports_is_reported(tmp_path):
    found = violations(tmp_path, {"pkg/left/x.py": "from ..low import a\nfrom .y import Y\n",
                                   "pkg/left/y.py": "from . import x\nY = 2\n"})
    assert len(found["cycles"]) == 1
    assert "pkg.left.x -> pkg.left.y -> pkg.left.x" in found["cycles"][0]
    assert "pkg/left/x.py:2: pkg.left.x imports pkg.left.y" in found["cycles"][0]
    assert "pkg/left/y.py:1: pkg.left.y imports pkg.left.x" in found["cycles"][0]


def test_a_longer_cycle_across_packages_shows_every_edge(tmp_path):
    found = violations(tmp_path, {"pkg/low/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                                   "    from pkg.high import b\n"})
    assert len(found["cycles"]) == 1
    for edge in ("pkg/low/a.py:3: pkg.low.a imports pkg.high.b", "pkg/high/b.py:1: pkg.high.b imports pkg.left.x",
                 "pkg/left/x.py:1: pkg.left.x imports pkg.low.a", "pkg/high/b.py:5: pkg.high.b imports pkg.low.a"):
        assert edge in found["cycles"][0]


def test_an_upward_import_is_reported_wherever_it_is_written(tmp_path):
    found = violations(tmp_path, {"pkg/low/d.py": "import typing\nif typing.TYPE_CHECKING:\n    import pkg.left.x\n"
                                                   "def f():\n    from pkg import main\n"
                                                   "    import importlib\n    importlib.import_module('pkg.high')\n"})
    assert found["layer order"] == [
        "pkg/low/d.py:3: upward: pkg.low.d (pkg.low, layer 0) imports pkg.left.x (pkg.left, layer 1)",
        "pkg/low/d.py:5: upward: pkg.low.d (pkg.low, layer 0) imports pkg.main (the top, layer 3)",
        "pkg/low/d.py:7: upward: pkg.low.d (pkg.low, layer 0) imports pkg.high (pkg.high, layer 2)",   # __init__
    ]
    assert found["cycles"] == []


def test_an_import_between_two_packages_of_one_layer_is_reported(tmp_path):
    found = violations(tmp_path, {"pkg/right/w.py": "import pkg.left.x as x\n"})
    assert found["layer order"] == ["pkg/right/w.py:1: sideways: pkg.right.w imports pkg.left.x, but pkg.right "
                                    "and pkg.left are packages of the same layer 1"]


def test_a_module_outside_every_layer_is_named(tmp_path):
    found = violations(tmp_path, {"pkg/extra/thing.py": "from pkg.low import a\n"})
    assert found["undeclared"] == ["pkg/extra/thing.py: pkg.extra.thing is in no package of the declared layers "
                                   "and not directly in pkg"]
    assert found["layer order"] == ["pkg/extra/thing.py:1: pkg.extra.thing imports pkg.low.a: pkg.extra.thing is "
                                    "in no declared layer"]


def test_an_import_of_a_module_that_is_not_there_is_reported(tmp_path):
    found = violations(tmp_path, {"pkg/low/a.py": "from pkg.gone import thing\nfrom .missing import other\n"})
    assert found["layer order"] == ["pkg/low/a.py:1: pkg.low.a imports pkg.gone, which is no module of pkg/",
                                    "pkg/low/a.py:2: pkg.low.a imports pkg.low.missing, which is no module of pkg/"]


def test_the_layers_are_an_argument(tmp_path):
    """The clean package against its layers upside down: each import between two packages is now upward."""
    write_package(tmp_path, CLEAN)
    found = layer_violations(build_graph(tmp_path, "pkg"), tuple(reversed(LAYERS)), "pkg")
    assert [m.split(": upward")[0] for m in found] == ["pkg/high/b.py:1", "pkg/high/b.py:2", "pkg/high/b.py:5",
                                                       "pkg/left/x.py:1", "pkg/left/x.py:2", "pkg/right/z.py:4"]


def test_importing_tfpg_is_light_and_silent(tmp_path):
    """`import tfpg` (the package's face) loads no TensorFlow, Keras, tfp or gymnasium and prints nothing."""
    import subprocess
    import sys

    code = ("import sys, tfpg, tfpg.layers; heavy = ('tensorflow', 'keras', 'tensorflow_probability', 'gymnasium'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n" and proc.stderr == ""
