"""Options declared once: a config dataclass field carries its help text, choices and bounds.

    lr: float = option(1e-3, "Adam learning rate", low=0.0, low_open=True, high=1.0)

From these declarations come the command-line parser (`add_arguments`), the type and range
checks (`check_fields`) and the docs' flags reference (`flags_table`). A subclass that only
changes a default writes the plain value (`lr: float = 0.01`); its help, choices and bounds
are the ones declared in the nearest base class. Rules between fields stay explicit code in
the config's `check()` method.

Plain dataclass metadata was chosen over a CLI library (tyro, simple-parsing): argparse keeps
`--help` and the one-line errors exactly as tfpg words them, and TensorFlow users already have it.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import math
from typing import Any

from tfpg.core.errors import ConfigError
from tfpg.core.fields import kind


def option(default: Any, help: str, *, choices: tuple | None = None, low: float | None = None,
           high: float | None = None, low_open: bool = False, hparam: bool = True, flag: str | None = None,
           metavar: str | None = None) -> Any:
    """A dataclass field with its command-line documentation and checks.

    low/high bound numbers (low_open: strictly above low); choices list the allowed strings;
    hparam=False keeps bookkeeping (paths, progress bar) out of TensorBoard's HPARAMS tab;
    flag names a store_true/store_false switch such as "--no-export" instead of "--export {true,false}".
    """
    meta = dict(help=help, choices=choices, low=low, high=high, low_open=low_open, hparam=hparam, flag=flag,
                metavar=metavar)
    return dataclasses.field(default=default, metadata=meta)


def declaration(cls: type, name: str) -> dict:
    """The metadata of field `name`: from the nearest class in cls's MRO that declares it with option()."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and f.metadata.get("help"):
            return dict(f.metadata)
    raise TypeError(f"{cls.__name__}.{name} has no option() declaration")


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-").replace("env-id", "env")


# --- checks ---------------------------------------------------------------------------------

_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
               "tuple[int, ...]": "layer widths like 64,64",
               "dict": "KEY=VALUE pairs (a dict with str keys and values JSON can store)"}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _type_ok(base: str, v) -> bool:
    return {"int": _is_int(v),
            "float": isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": isinstance(v, bool),
            "str": isinstance(v, str),
            "tuple[int, ...]": isinstance(v, (tuple, list)) and len(v) > 0 and all(_is_int(h) and h > 0 for h in v),
            "dict": isinstance(v, dict) and all(isinstance(k, str) for k in v) and _json_storable(v),
            }.get(base, True)


def _json_storable(value) -> bool:
    """Whether config.json can hold `value` (a run's configuration is saved as JSON before it trains)."""
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _range_error(flag: str, base: str, v, meta: dict) -> str | None:
    low, high, low_open = meta["low"], meta["high"], meta["low_open"]
    if base == "int":
        if low is not None and high is not None and not low <= v <= high:
            return f"{flag} must be an integer in [{low}, {high}], got {v!r}"
        if low is not None and v < low:
            word = "a positive integer" if low == 1 else "a non-negative integer" if low == 0 else f"an integer >= {low}"
            return f"{flag} must be {word}, got {v!r}"
        return None
    if not math.isfinite(v):
        return f"{flag} must be a finite number, got {v!r}"
    if low is not None and (v <= low if low_open else v < low):
        return f"{flag} must be {'>' if low_open else '>='} {float(low)}, got {v!r}"
    if high is not None and v > high:
        return f"{flag} must be <= {float(high)}, got {v!r}"
    return None


def check_field(config, f: dataclasses.Field) -> None:
    """Type, choices and bounds of one field; ConfigError naming the flag otherwise."""
    meta, v = declaration(type(config), f.name), getattr(config, f.name)
    base, nullable = kind(f)
    flag = flag_name(f.name)
    if v is None and nullable:
        return
    if not _type_ok(base, v):
        raise ConfigError(f"{flag} must be {_TYPE_WORDS.get(base, base)}, got {v!r}")
    if meta["choices"] is not None and v not in meta["choices"]:
        raise ConfigError(unknown_choice(flag, v, meta["choices"]))
    if base in ("int", "float"):
        problem = _range_error(flag, base, v, meta)
        if problem:
            raise ConfigError(problem)


def check_fields(config) -> None:
    for f in dataclasses.fields(config):
        check_field(config, f)


def unknown_choice(what: str, value, choices) -> str:
    import difflib

    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; choose from {', '.join(map(str, choices))}"
    return f"unknown {what} {value!r}{hint}"


# --- the parser ------------------------------------------------------------------------------

def parse_widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer widths like 128 or 64,64, got {text!r}") from None


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_key_value(text: str) -> tuple[str, object]:
    """KEY=VALUE -> (KEY, the Python literal VALUE as JSON stores it: tuples become lists)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"{text}: expected KEY=VALUE with KEY a keyword name, e.g. length=4")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise argparse.ArgumentTypeError(f"{text}: {value!r} is not a Python literal (quote strings: "
                                         f"{key}='{value}')") from None
    if not _json_storable(parsed):
        raise argparse.ArgumentTypeError(f"{text}: a {type(parsed).__name__} cannot be saved in config.json; use "
                                         "numbers, strings, booleans, None, lists or dicts")
    # the env gets what a resumed run reads back from config.json, so both runs build the same env
    return key, json.loads(json.dumps(parsed))


class _KeyValues(argparse.Action):
    """Collects KEY=VALUE items (from one or several uses of the flag) into one dict."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest) or {}), **dict(values)})


def describe_default(values: list[tuple[str, Any]]) -> str:
    """'0.01' or '0.01 (reinforce), 0.001 (dqn)' when the algorithms' defaults differ."""
    shown = [(who, ",".join(map(str, v)) if isinstance(v, tuple) else "unset" if v is None else str(v))
             for who, v in values]
    if len({v for _, v in shown}) == 1:
        return shown[0][1]
    return ", ".join(f"{v} ({who})" for who, v in shown)


def argument_kwargs(cls: type, f: dataclasses.Field) -> tuple[str, dict]:
    """(flag, add_argument keywords) for one field; every flag defaults to None (= not given)."""
    meta = declaration(cls, f.name)
    base, _ = kind(f)
    if meta["flag"]:
        return meta["flag"], dict(dest=f.name, action="store_const", const=not f.default, default=None)
    kwargs: dict[str, Any] = dict(dest=f.name, default=None)
    if base == "bool":
        kwargs.update(type=parse_bool, metavar="{true,false}")
    elif base == "tuple[int, ...]":
        kwargs.update(type=parse_widths, metavar="W[,W...]")
    elif base == "dict":
        kwargs.update(type=parse_key_value, nargs="+", action=_KeyValues)
    elif base in ("int", "float"):
        kwargs.update(type=int if base == "int" else float)
    if meta["choices"] is not None:
        kwargs["choices"] = meta["choices"]
    if meta["metavar"]:
        kwargs["metavar"] = meta["metavar"]
    return flag_name(f.name), kwargs


def owners(classes: dict[str, type]) -> dict[str, list[str]]:
    """field name -> the algorithm names whose config has it and uses it, in registry order (a config's
    `unused` names inherited options it refuses)."""
    out: dict[str, list[str]] = {}
    for algo, cls in classes.items():
        for f in dataclasses.fields(cls):
            if f.name not in getattr(cls, "unused", ()):
                out.setdefault(f.name, []).append(algo)
    return out


def declaring_class(classes: dict[str, type], name: str) -> type:
    """The most basic config class that declares `name` (its group in --help and in the flags reference)."""
    cls = next(c for c in classes.values() if name in {f.name for f in dataclasses.fields(c)})
    for klass in reversed(cls.__mro__):
        if name in getattr(klass, "__dataclass_fields__", {}):
            return klass
    return cls


def option_rows(classes: dict[str, type], skip=()):
    """(group class, field, metadata, default text, algorithms) for every option, grouped by declaring class."""
    fields_by_algo = {a: {f.name: f for f in dataclasses.fields(c)} for a, c in classes.items()}
    rows = []
    for name, algos in owners(classes).items():
        if name in skip:
            continue
        group = declaring_class(classes, name)
        f = fields_by_algo[algos[0]][name]
        default = describe_default([(a, fields_by_algo[a][name].default) for a in algos])
        rows.append((group, f, declaration(classes[algos[0]], name), default, algos))
    order = {g: i for i, g in enumerate(dict.fromkeys(r[0] for r in rows))}
    return sorted(rows, key=lambda r: order[r[0]])


def add_arguments(parser: argparse.ArgumentParser, classes: dict[str, type], skip=()) -> None:
    """One argparse group per declaring config class; help ends with the dataclass default(s)."""
    groups: dict[type, Any] = {}
    for group, f, meta, default, algos in option_rows(classes, skip):
        if group not in groups:
            groups[group] = parser.add_argument_group(group.group_title(), group.group_help())
        flag, kwargs = argument_kwargs(classes[algos[0]], f)
        suffix = "" if meta["flag"] else f" (default: {default})"
        groups[group].add_argument(flag, help=meta["help"].replace("%", "%%") + suffix, **kwargs)


def flags_table(classes: dict[str, type], skip=()) -> str:
    """The flags reference (docs/guide/flags.md): flag, default(s), allowed values, applies to, meaning."""
    lines = ["| flag | default | allowed | algorithms | meaning |", "|---|---|---|---|---|"]
    for group, f, meta, default, algos in option_rows(classes, skip):
        flag = meta["flag"] or flag_name(f.name)
        allowed = _allowed(kind(f)[0], meta)
        shown = "" if meta["flag"] else f"`{default}`"
        who = "all" if len(algos) == len(classes) else ", ".join(algos)
        lines.append(f"| `{flag}` | {shown} | {allowed} | {who} | {meta['help'].replace('|', '/')} |")
    return "\n".join(lines)


def _allowed(base: str, meta: dict) -> str:
    if meta["choices"] is not None:
        return " / ".join(f"`{c}`" for c in meta["choices"])
    if meta["flag"] or base == "bool":
        return "switch" if meta["flag"] else "true / false"
    low, high = meta["low"], meta["high"]
    if low is None and high is None:
        return {"tuple[int, ...]": "widths ≥ 1", "dict": "KEY=VALUE ..."}.get(base, base)
    left = "" if low is None else f"{'>' if meta['low_open'] else '≥'} {low}"
    right = "" if high is None else f"≤ {high}"
    return ", ".join(x for x in (left, right) if x)
