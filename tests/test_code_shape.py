"""The shape the codebase promises: short functions. (The generated docs pages are checked in test_docs.py.)"""
import ast
import os

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
