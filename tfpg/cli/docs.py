"""Documentation generated from the code, so that it cannot go stale.

Blocks between `<!-- NAME:start -->` and `<!-- NAME:end -->` in the pages of `PAGES`: the flags (from the
option declarations), the presets, the algorithms' action spaces and backends (from the registry) and the
package's layers (from `tfpg.layers`); and the site's landing page, `docs/index.md`, which is README.md
with its links made relative to `docs/`.

    python -m tfpg.docs flags      print one block (flags, presets, algorithms, layers)
    python -m tfpg.docs --write    refresh every block in its page, then docs/index.md from README.md

`tests/test_docs.py` fails when a page differs from what this writes.
"""
from __future__ import annotations

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Each generated block and the files that hold it, relative to the repository root.
PAGES = {"flags": ("docs/guide/flags.md",), "presets": ("docs/guide/presets.md",),
         "algorithms": ("README.md", "docs/algorithms/index.md"), "layers": ("docs/design/architecture.md",)}
# Each algorithm's page holds its own options (those not every algorithm has) and its presets.
ALGORITHM_PAGES = {"reinforce": "docs/algorithms/reinforce.md", "dqn": "docs/algorithms/dqn.md",
                   "a2c": "docs/algorithms/a2c.md", "ppo": "docs/algorithms/ppo.md",
                   "trpo": "docs/algorithms/trpo-npg.md"}
PAGES.update({f"{kind}-{algo}": (page,) for algo, page in ALGORITHM_PAGES.items() for kind in ("options", "presets")})
INDEX = "docs/index.md"
INDEX_HEADER = "<!-- Generated from README.md by `python -m tfpg.docs --write`: edit README.md, not this page. -->\n"


def flags() -> str:
    from tfpg import algos
    from tfpg.config.options import flags_table

    table = flags_table(algos.config_classes(), skip=("algo",)).split("\n")
    extra = [f"| `--algo` | `reinforce` | {' / '.join(f'`{a}`' for a in algos.REGISTRY)} | all | the algorithm |",
             "| `--preset` | the env's default preset | `--list-presets` | all | named settings, citing their source |",
             "| `--resume RUN_DIR` |  | a run folder | all | continue a run from its latest checkpoint with its saved "
             "configuration (only `--total-steps`, `--no-progress` may be given with it) |",
             "| `--list-presets` |  | switch | all | print every preset and exit |"]
    return "\n".join(table[:2] + extra + table[2:])


def presets() -> str:
    from tfpg import algos

    lines = ["| preset | --algo | env | what | source |", "|---|---|---|---|---|"]
    for p in algos.presets().values():
        default = " (default)" if p.default else ""
        lines.append(f"| `{p.name}`{default} | {p.algo} | {p.env_id} | {p.description} | {p.source} |")
    return "\n".join(lines)


def algorithm_options(name: str) -> str:
    """The options of one algorithm that not every algorithm has, with its own defaults."""
    from tfpg import algos
    from tfpg.config.options import flags_table, owners

    classes = algos.config_classes()
    shared = tuple(field for field, who in owners(classes).items() if len(who) == len(classes))
    header, _, *rows = flags_table({name: classes[name]}, skip=shared).split("\n")
    rows = [header, "|---|---|---|---|", *rows]
    return "\n".join(" | ".join(cells[:3] + cells[4:]) for cells in (row.split(" | ") for row in rows))


def algorithm_presets(name: str) -> str:
    from tfpg import algos

    lines = ["| preset | env | what | source |", "|---|---|---|---|"]
    for p in algos.presets().values():
        if p.algo == name:
            default = " (default)" if p.default else ""
            lines.append(f"| `{p.name}`{default} | {p.env_id} | {p.description} | {p.source} |")
    return "\n".join(lines)


def algorithms() -> str:
    """Which action spaces each registered algorithm drives, and which backends run it."""
    import gymnasium as gym

    from tfpg import algos
    from tfpg.algos.capabilities import Distributable, GraphTrainable

    def mark(yes: bool) -> str:
        return "✓" if yes else "–"

    lines = ["| `--algo` | Discrete actions | Box actions | `--backend graph` | `--workers N` (Ray) |",
             "|---|:-:|:-:|:-:|:-:|"]
    for name, algorithm in algos.REGISTRY.items():
        lines.append(f"| `{name}` | {mark(gym.spaces.Discrete in algorithm.action_spaces)} "
                     f"| {mark(gym.spaces.Box in algorithm.action_spaces)} | {mark(issubclass(algorithm, GraphTrainable))} "
                     f"| {mark(issubclass(algorithm, Distributable))} |")
    return "\n".join(lines)


def layers(declared, top: str) -> str:
    """`tfpg.layers.LAYERS` (`declared`, bottom layer first) as a mermaid diagram, each layer above the ones it
    may import, and as a table of what each package holds."""
    diagram = ["```mermaid", "flowchart TD", f'    top["{top}: the modules directly in {top}/"]']
    table = ["| layer | package | what it holds |", "|---|---|---|",
             f"| top | `{top}` | the package's face and the `python -m` entry points |"]
    for i in reversed(range(len(declared))):
        diagram += [f'    subgraph L{i}["layer {i}"]', "        direction LR"]
        for j, (package, what) in enumerate(declared[i]):
            diagram.append(f'        L{i}_{j}["{package}"]')
            table.append(f"| {i} | `{package}` | {what} |")
        diagram.append("    end")
    chain = ["top", *(f"L{i}" for i in reversed(range(len(declared))))]
    diagram += [f"    {a} --> {b}" for a, b in zip(chain, chain[1:])] + ["```"]
    return "\n".join(diagram + [""] + table)


API = "docs/reference/api"
API_HEADER = "<!-- Generated by `python -m tfpg.docs --write` from tfpg/layers.py and the modules of tfpg/. -->\n"


def api_page_name(package: str) -> str:
    return "tfpg" if package == "tfpg" else package.removeprefix("tfpg.").replace(".", "-")


def modules_by_package(declared, top: str) -> dict[str, list[str]]:
    """Every module of tfpg/ with code beyond its docstring, by the package of `declared` it belongs to
    (the longest that contains it; `top` for the modules directly in tfpg/), in file order."""
    import ast

    packages = [p for layer in declared for p, _ in layer]
    found: dict[str, list[str]] = {p: [] for p in [*packages, top]}
    for folder, dirs, files in sorted(os.walk(os.path.join(ROOT, top))):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            tree = ast.parse(open(path).read())
            if len(tree.body) == (1 if ast.get_docstring(tree) else 0):   # a docstring and nothing else
                continue
            owner = max((p for p in packages if module == p or module.startswith(p + ".")), key=len, default=None)
            if owner is None and module.count(".") <= 1:
                owner = top
            if owner is not None:
                found[owner].append(module)
    return found


def api_pages(declared, top: str) -> dict[str, str]:
    """docs/reference/api/: one page per package of `declared` (and one for the top), each of its modules as
    a mkdocstrings `::: module` block, and an index of the layers linking them."""
    what = {p: text for layer in declared for p, text in layer}
    what[top] = "the package's face and the `python -m` entry points"
    layer_of = {p: str(i) for i, layer in enumerate(declared) for p, _ in layer} | {top: "top"}
    pages, rows = {}, []
    for package, modules in reversed(modules_by_package(declared, top).items()):
        name = api_page_name(package)
        blocks = "\n\n".join(f"::: {m}" for m in modules)
        pages[f"{API}/{name}.md"] = (f"{API_HEADER}# {package}\n\nLayer {layer_of[package]}: {what[package]}.\n\n"
                                     f"{blocks}\n")
        rows.append(f"| {layer_of[package]} | [`{package}`]({name}.md) | {what[package]} |")
    pages[f"{API}/index.md"] = (f"{API_HEADER}# API reference\n\nFrom the docstrings, one page per package, "
                                "from the top layer down (see [Architecture](../../design/architecture.md)).\n\n"
                                "| layer | package | what it holds |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    return pages


def generated(package_layers=None) -> dict[str, str]:
    """Every generated block by name. `package_layers`: (LAYERS, TOP) of `tfpg.layers`, which only the modules
    directly in tfpg/ may import (this one is in a lower layer), so `tfpg/docs.py` passes them in."""
    blocks = {"flags": flags(), "presets": presets(), "algorithms": algorithms()}
    for algo in ALGORITHM_PAGES:
        blocks[f"options-{algo}"], blocks[f"presets-{algo}"] = algorithm_options(algo), algorithm_presets(algo)
    if package_layers is not None:
        blocks["layers"] = layers(*package_layers)
    return blocks


def block_pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.S)


def index_page(readme: str) -> str:
    """docs/index.md: README.md with links into docs/ made relative to docs/."""
    return INDEX_HEADER + re.sub(r"\]\(docs/", "](", readme)


def expected_pages(package_layers=None) -> dict[str, str]:
    """Every generated file's path (relative to the root) and the text it should have."""
    texts = {}
    for name, table in generated(package_layers).items():
        for page in PAGES[name]:
            text = texts.get(page) or open(os.path.join(ROOT, page)).read()
            if not block_pattern(name).search(text):
                raise SystemExit(f"{page} has no <!-- {name}:start --> ... <!-- {name}:end --> block")
            texts[page] = block_pattern(name).sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    readme = texts.get("README.md") or open(os.path.join(ROOT, "README.md")).read()
    texts[INDEX] = index_page(readme)
    if package_layers is not None:
        texts.update(api_pages(*package_layers))
    return texts


def write(package_layers=None) -> None:
    os.makedirs(os.path.join(ROOT, API), exist_ok=True)
    for page, text in expected_pages(package_layers).items():
        with open(os.path.join(ROOT, page), "w") as f:
            f.write(text)


def main(argv: list[str], package_layers=None) -> int:
    from tfpg.core.quiet import import_tensorflow

    import_tensorflow()
    if argv == ["--write"]:
        write(package_layers)
        return 0
    tables = generated(package_layers)
    if len(argv) != 1 or argv[0] not in tables:
        print(f"usage: python -m tfpg.docs {{{','.join(tables)}}} | --write", file=sys.stderr)
        return 2
    print(tables[argv[0]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
