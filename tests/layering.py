"""A package's import graph, read from its source with `ast` (nothing is imported), checked against layers.

Every import of the package counts, wherever it is written: at module level, inside functions and methods,
under `if TYPE_CHECKING:`, relative imports, and `importlib.import_module("pkg.x")` with a literal name.
Only written imports count: Python also runs a parent package before its submodule, but that edge is not
added (a package whose `__init__` imports its own submodules would otherwise always be a cycle).

Two rules, and no way to waive either:
- no cycle among modules;
- a module imports only modules of its own package and of packages in a lower layer: never a higher layer,
  never another package of its own layer. The modules directly in the root package (`pkg.x`, `pkg`) are the
  top layer; a module in no declared package and not at the top is named as undeclared.

`layers` is the shape of `tfpg.layers.LAYERS`: a tuple of layers, bottom first, each a tuple of
(package, description). `python tests/layering.py` checks tfpg/ and exits 1 on any violation.
"""
from __future__ import annotations

import ast
import sys
import textwrap
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Import:
    source: str   # the importing module
    target: str   # the imported module (for an unresolved import: the name as written)
    path: str     # the importing file, relative to the source root
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Graph:
    package: str
    modules: dict[str, str]         # module name -> file, relative to the source root
    imports: list[Import]           # every import statement (one per imported module) that names a module
    unresolved: list[Import]        # imports of the package that name no module of it

    def edges(self) -> dict[tuple[str, str], list[Import]]:
        """(importer, imported) -> the import statements behind that edge, in file order."""
        found = defaultdict(list)
        for imp in self.imports:
            found[imp.source, imp.target].append(imp)
        return found


# --- reading the source ------------------------------------------------------------------------------------------

def find_modules(root: Path, package: str) -> dict[str, str]:
    """Every module of `package` under `root`: pkg/x/y.py -> pkg.x.y, pkg/x/__init__.py -> pkg.x."""
    modules = {}
    for file in sorted((root / package).rglob("*.py")):
        if "__pycache__" in file.parts:
            continue
        parts = file.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = file.relative_to(root).as_posix()
    return modules


def build_graph(root: Path | str, package: str) -> Graph:
    root = Path(root)
    modules = find_modules(root, package)
    graph = Graph(package, modules, [], [])
    for module, path in modules.items():
        tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=path)
        is_package = path.endswith("/__init__.py")
        for node in ast.walk(tree):
            for name, names, line in _imported_names(node, module, is_package):
                if name == package or name.startswith(package + "."):
                    _add(graph, Import(module, name, path, line), names)
    graph.imports.sort(key=lambda i: (i.path, i.line, i.target))
    graph.unresolved.sort(key=lambda i: (i.path, i.line, i.target))
    return graph


def _imported_names(node: ast.AST, module: str, is_package: bool):
    """(absolute module name, names taken from it or None, line) for each import `node` makes."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, None, node.lineno
    elif isinstance(node, ast.ImportFrom):
        base = _resolve(node.module or "", node.level, module, is_package)
        if base is not None:
            yield base, [alias.name for alias in node.names], node.lineno
    elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
        name = _literal(node.args[0])
        anchor = _literal(node.args[1]) if len(node.args) > 1 else next(
            (_literal(k.value) for k in node.keywords if k.arg == "package"), None)
        if name and name.startswith(".") and anchor:          # import_module(".x", package="pkg.y")
            level = len(name) - len(name.lstrip("."))
            name = _resolve(name[level:], level, anchor, is_package=True)
        if name and not name.startswith("."):
            yield name, None, node.lineno


def _resolve(name: str, level: int, module: str, is_package: bool) -> str | None:
    """The absolute name of `from {'.' * level}{name} import ...` written in `module` (None: above the top)."""
    if level == 0:
        return name
    parts = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 >= len(parts):
        return None
    parts = parts[:len(parts) - (level - 1)]
    return ".".join(parts + ([name] if name else []))


def _is_import_module(func: ast.expr) -> bool:
    return ((isinstance(func, ast.Attribute) and func.attr == "import_module"
             and isinstance(func.value, ast.Name) and func.value.id == "importlib")
            or (isinstance(func, ast.Name) and func.id == "import_module"))


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _add(graph: Graph, imp: Import, names: list[str] | None) -> None:
    """`import a.b` -> a.b; `from a.b import c` -> a.b.c where that is a module, else a.b."""
    if names is None:
        targets = [imp.target]
    else:
        targets = sorted({f"{imp.target}.{n}" if f"{imp.target}.{n}" in graph.modules else imp.target
                          for n in names})
    for target in targets:
        found = Import(imp.source, target, imp.path, imp.line)
        (graph.imports if target in graph.modules else graph.unresolved).append(found)


# --- rule 1: no cycle --------------------------------------------------------------------------------------------

def strongly_connected(nodes, successors: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of the graph (every node in exactly one component)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(successors.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(nodes):      # recursion as deep as the longest import chain: a few dozen modules
        if node not in index:
            visit(node)
    return components


def find_cycles(graph: Graph) -> list[list[list[tuple[str, str]]]]:
    """The import cycles, grouped by strongly connected component (modules that all reach each other), each
    cycle a list of edges. Within a component, for each edge that no cycle found so far runs through: the
    shortest cycle through it. So every edge that lies on a cycle is shown, without listing each of the
    (exponentially many) cycles they can form."""
    edges = graph.edges()
    successors = defaultdict(set)
    for a, b in edges:
        successors[a].add(b)
    components = []
    for component in strongly_connected(graph.modules, successors):
        members, cycles, covered = set(component), [], set()
        for a, b in sorted(edges):
            if a not in members or b not in members or a == b or (a, b) in covered:
                continue        # a == b: a module naming itself (`from . import NAME` in an __init__) is no cycle
            chain = [a] + _shortest_path(b, a, successors, members)      # a -> b -> ... -> a
            cycle = list(zip(chain, chain[1:]))
            covered.update(cycle)
            cycles.append(cycle)
        if cycles:
            components.append(cycles)
    return components


def _shortest_path(start: str, goal: str, successors: dict[str, set[str]], within: set[str]) -> list[str]:
    """Breadth-first: the nodes from `start` to `goal`, both included, staying inside `within`."""
    came_from, queue = {start: None}, deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for nxt in sorted(successors[node] & within):
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    path, node = [], goal
    while node is not None:
        path.append(node)
        node = came_from[node]
    return path[::-1]


def cycle_messages(graph: Graph) -> list[str]:
    """One message per group of modules in a cycle: its chains a -> b -> a, with the file:line of every edge."""
    edges = graph.edges()
    messages = []
    for cycles in find_cycles(graph):
        members = sorted({a for cycle in cycles for a, _ in cycle})
        lines = [f"import cycle among {len(members)} modules ({', '.join(members)}):"]
        for cycle in cycles:
            lines.append("  " + " -> ".join([a for a, _ in cycle] + [cycle[0][0]]))
            lines += [f"    {_places(edges[a, b])}: {a} imports {b}" for a, b in cycle]
        messages.append("\n".join(lines))
    return messages


def _places(imports: list[Import]) -> str:
    """tfpg/a.py:3 (or tfpg/a.py:3, 40, 77 for several statements of one edge)."""
    return f"{imports[0].path}:" + ", ".join(str(i.line) for i in imports)


# --- rule 2: the layer order -------------------------------------------------------------------------------------

def package_of(module: str, layers, top: str) -> str | None:
    """The declared package holding `module` (the longest that does), `top` for the modules directly in the
    root package, or None: undeclared."""
    matches = [p for layer in layers for p, _ in layer if module == p or module.startswith(p + ".")]
    if matches:
        return max(matches, key=len)
    if module == top or module.rpartition(".")[0] == top:
        return top
    return None


def layer_numbers(layers, top: str) -> dict[str, int]:
    """package -> its layer, 0 at the bottom; `top` is one above the last."""
    numbers = {package: i for i, layer in enumerate(layers) for package, _ in layer}
    numbers[top] = len(layers)
    return numbers


def undeclared_modules(graph: Graph, layers, top: str) -> list[str]:
    return [f"{path}: {module} is in no package of the declared layers and not directly in {top}"
            for module, path in graph.modules.items() if package_of(module, layers, top) is None]


def layer_violations(graph: Graph, layers, top: str) -> list[str]:
    """One line per import statement that breaks the layer order, or whose end cannot be placed in it."""
    numbers = layer_numbers(layers, top)

    def named(module, package):
        return f"{module} ({'the top' if package == top else package}, layer {numbers[package]})"

    messages = []
    for imp in graph.imports:
        source, target = package_of(imp.source, layers, top), package_of(imp.target, layers, top)
        if source is None or target is None:
            undeclared = " and ".join(m for m, p in ((imp.source, source), (imp.target, target)) if p is None)
            messages.append(f"{imp.where}: {imp.source} imports {imp.target}: {undeclared} is in no declared layer")
        elif source != target and numbers[target] > numbers[source]:
            messages.append(f"{imp.where}: upward: {named(imp.source, source)} imports "
                            f"{named(imp.target, target)}")
        elif source != target and numbers[target] == numbers[source]:
            messages.append(f"{imp.where}: sideways: {imp.source} imports {imp.target}, but {source} and "
                            f"{target} are packages of the same layer {numbers[source]}")
    for imp in graph.unresolved:
        messages.append(f"{imp.where}: {imp.source} imports {imp.target}, which is no module of {graph.package}/")
    return messages


def check(root: Path | str, package: str, layers, top: str | None = None) -> dict[str, list[str]]:
    """Every violation, by rule: {"cycles": [...], "layer order": [...], "undeclared": [...]}."""
    graph = build_graph(root, package)
    top = top or package
    return {"cycles": cycle_messages(graph),
            "layer order": layer_violations(graph, layers, top),
            "undeclared": undeclared_modules(graph, layers, top)}


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from tfpg.layers import LAYERS, TOP

    found = check(root, "tfpg", LAYERS, TOP)
    total = sum(map(len, found.values()))
    if not total:
        print(f"tfpg layers OK: {len(find_modules(root, 'tfpg'))} modules, no cycle, every import follows "
              f"the layer order of tfpg/layers.py")
        return 0
    for rule, messages in found.items():
        if messages:
            print(f"{rule}: {len(messages)}")
            print(textwrap.indent("\n".join(messages), "  "))
    print(f"tfpg layers: {total} violations")
    return 1


if __name__ == "__main__":
    sys.exit(main())
