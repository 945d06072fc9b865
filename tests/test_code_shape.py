"""The shape the codebase promises: short functions, a README flags table generated from the options."""
import ast
import os
import re

from conftest import ROOT

MAX_FUNCTION_LINES = 60


def test_no_function_in_tfpg_is_longer_than_a_screen():
    long = []
    for folder, _, files in os.walk(os.path.join(ROOT, "tfpg")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            for node in ast.walk(ast.parse(open(path).read())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_readme_flags_table_is_generated_from_the_option_declarations():
    """README.md holds exactly `python -m tfpg.docs flags` between its markers; regenerate it with
    `python -m tfpg.docs --write` after changing an option."""
    from tfpg.cli import docs

    readme = open(os.path.join(ROOT, "README.md")).read()
    for name, text in docs.generated().items():
        found = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", readme, re.S)
        assert found, f"README.md has no <!-- {name}:start --> ... <!-- {name}:end --> block"
        assert found.group(1) == text, f"README's {name} block is out of date: run python -m tfpg.docs --write"
