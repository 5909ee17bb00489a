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


#: The most nodes a document may have once its aliases are expanded. losslab's configs and
#: experiment files have a few hundred; a "billion laughs" file (9 levels of 9 aliases, 387 million
#: nodes once expanded) parses in a millisecond but hangs every walk over the data afterwards
#: (validation, positions, ``to_dict``), so it is refused before anything walks it.
MAX_EXPANDED_NODES = 100_000


def _expanded_size(root: yaml.Node, *, what: str) -> int:
    """How many nodes ``root`` has with every alias expanded, counted without expanding it.

    An alias is the same node object at each use, so the count is memoised per node (linear in the
    file's size). A node that contains itself (``&a [*a]``) is refused: nothing can walk it.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ValueError(f"{what} contains a YAML alias that refers to itself; write the "
                             "value out instead of the alias.")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node) + size(value_node)
                if total > MAX_EXPANDED_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
                if total > MAX_EXPANDED_NODES:
                    break
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _compose(text: str, *, what: str) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    """The loader and the node graph of ``text`` (aliases still shared), its size checked.

    Raises:
        ValueError: one line, for a syntax error or a document larger than
            :data:`MAX_EXPANDED_NODES` nodes once its aliases are expanded.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, what=what) > MAX_EXPANDED_NODES:
            raise ValueError(
                f"{what} expands to more than {MAX_EXPANDED_NODES} YAML values through its "
                "aliases (*name), far more than any losslab file needs; write the values out "
                "instead of nesting aliases."
            )
    except yaml.YAMLError as error:
        loader.dispose()
        raise ValueError(
            f"{what} is not valid YAML ({describe_yaml_error(error)}). Check the indentation and "
            "quote values that contain ':', '#', '{' or '[' (e.g. loss: \"l1 + 0.1*mse\")."
        ) from None
    except RecursionError:  # nested deeper than Python's stack: no losslab file is
        loader.dispose()
        raise ValueError(f"{what} is nested too deeply to read; flatten it.") from None
    except ValueError:
        loader.dispose()
        raise
    return loader, node


def _construct(loader: yaml.SafeLoader, node: yaml.Node | None, *, what: str) -> Any:
    try:
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:  # e.g. an unhashable key: the constructor's own errors
        raise ValueError(f"{what} is not valid YAML ({describe_yaml_error(error)}).") from None
    finally:
        loader.dispose()


def load_yaml(text: str, *, what: str) -> Any:
    """``yaml.safe_load(text)``; a syntax error becomes a one-line ``ValueError`` naming ``what``
    (e.g. ``"config file 'x.yaml'"``), the line and column, and the usual fix.

    A document with more than :data:`MAX_EXPANDED_NODES` values once its aliases are expanded (an
    alias bomb), or an alias inside itself, is refused with a one-line ``ValueError`` too.
    """
    loader, node = _compose(text, what=what)
    return _construct(loader, node, what=what)


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
    loader, node = _compose(text, what=what)
    data = _construct(loader, node, what=what)
    positions: Positions = {}
    if node is not None:  # at most MAX_EXPANDED_NODES steps: _compose checked the size
        _walk(node, (), None, positions)
    return data, positions


__all__ = ["MAX_EXPANDED_NODES", "Mark", "Positions", "describe_yaml_error", "load_yaml", "load_yaml_with_positions"]
