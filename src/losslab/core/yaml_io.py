"""One place that reads YAML text and turns a syntax error into one line naming where and what.

``yaml.YAMLError`` messages span several lines (the problem, a context, a code excerpt with a
caret); losslab reports configs, experiment files and ``--set`` values on one line instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """``"line 3, column 7: mapping values are not allowed here"`` for a YAML syntax error."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or " ".join(str(error).split())
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def load_yaml(text: str, *, what: str) -> Any:
    """``yaml.safe_load(text)``; a syntax error becomes a one-line ``ValueError`` naming ``what``
    (e.g. ``"config file 'x.yaml'"``), the line and column, and the usual fix."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(
            f"{what} is not valid YAML ({describe_yaml_error(error)}). Check the indentation and "
            "quote values that contain ':', '#', '{' or '[' (e.g. loss: \"l1 + 0.1*mse\")."
        ) from None


@dataclass(frozen=True)
class Mark:
    """Where a key and its value start in a YAML text: ``(line, column)``, both 1-based.

    ``key`` is ``None`` for list items and the document itself (they have no key).
    """

    key: tuple[int, int] | None
    value: tuple[int, int]


#: ``{location: Mark}``; a location is the path of keys and list indices from the document root,
#: ``()`` for the document, ``("entries", 2, "lr")`` for ``lr`` in the third entry.
Positions = dict[tuple[str | int, ...], Mark]


def _where(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(node: yaml.Node, location: tuple[str | int, ...], key: tuple[int, int] | None,
          positions: Positions) -> None:
    positions[location] = Mark(key, _where(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                _walk(value_node, (*location, key_node.value), _where(key_node), positions)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*location, index), None, positions)


def load_yaml_with_positions(text: str, *, what: str) -> tuple[Any, Positions]:
    """:func:`load_yaml` plus where every key and value starts, so a validation error can name the
    line and column of the offending key (``Positions``; empty for an empty document).

    Anchors and aliases are followed like ``yaml.safe_load`` does; a key that is not a plain
    scalar (a rare complex key) has no position.
    """
    data = load_yaml(text, what=what)
    positions: Positions = {}
    node = yaml.compose(text, Loader=yaml.SafeLoader)  # parses: load_yaml accepted the text
    if node is not None:
        _walk(node, (), None, positions)
    return data, positions


__all__ = ["Mark", "Positions", "describe_yaml_error", "load_yaml", "load_yaml_with_positions"]
