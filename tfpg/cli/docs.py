"""README tables generated from the code: the flags (from the option declarations) and the presets.

    python -m tfpg.docs flags      print one table
    python -m tfpg.docs --write    refresh every <!-- NAME:start --> ... <!-- NAME:end --> block in README.md

`tests/test_code_shape.py` fails when README.md differs from what this prints.
"""
from __future__ import annotations

import os
import re
import sys


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


def generated() -> dict[str, str]:
    return {"flags": flags(), "presets": presets()}


def write(readme: str) -> None:
    text = open(readme).read()
    for name, table in generated().items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{readme} has no <!-- {name}:start --> ... <!-- {name}:end --> block")
        text = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    with open(readme, "w") as f:
        f.write(text)


def main(argv: list[str]) -> int:
    from tfpg.core.quiet import import_tensorflow

    import_tensorflow()
    if argv == ["--write"]:
        write(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md"))
        return 0
    tables = generated()
    if len(argv) != 1 or argv[0] not in tables:
        print(f"usage: python -m tfpg.docs {{{','.join(tables)}}} | --write", file=sys.stderr)
        return 2
    print(tables[argv[0]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
