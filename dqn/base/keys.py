"""How a config key's value is read: checked against the field's type hint and returned in its
canonical type, and each field's one-line docstring read from the class source."""

from __future__ import annotations

import ast
import inspect
import types
import typing
from typing import Any, Literal


def coerce(key: str, hint: Any, value: Any, where: str, error: type[Exception]) -> Any:
    """`value` checked against the type `hint` of config key `key`, in that type's canonical
    form (ints as floats for float keys, lists as tuples); else `error` naming key and value."""
    bad = error(f"{where}key '{key}': {value!r} is not {describe(hint)}", keys=[key])
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise bad
        return value
    if hint is bool or hint is str:
        if not isinstance(value, hint):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        kinds = int | float if item is float else int
        if not isinstance(value, list | tuple) or any(
            isinstance(v, bool) or not isinstance(v, kinds) for v in value
        ):
            raise bad
        return tuple(item(v) for v in value)
    raise TypeError(f"unsupported config type for {key}: {hint}")  # a bug, not user input


def describe(hint: Any) -> str:
    """What a value of type `hint` must be, in words."""
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return "a list of " + ("numbers" if typing.get_args(hint)[0] is float else "integers")
    names = {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, str(hint)) if not isinstance(hint, types.UnionType) else str(hint)


def field_docs(cls: type) -> dict[str, str]:
    """Each field's one-line docstring (the string right below it), read from cls's source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = nxt.value.value.strip()
    return docs
