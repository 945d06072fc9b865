"""Reading a dataclass field's annotation: the option declarations and the checkpoint format both need it."""
from __future__ import annotations

import dataclasses


def annotation(f: dataclasses.Field) -> str:
    """A field's annotation as text, e.g. "float | None", whether or not its module postpones annotations."""
    return f.type if isinstance(f.type, str) else f.type.__name__ if isinstance(f.type, type) else str(f.type)


def kind(f: dataclasses.Field) -> tuple[str, bool]:
    """(base type name, whether None is allowed) from a field's annotation."""
    text = annotation(f)
    return text.replace(" | None", ""), text.endswith("| None")
