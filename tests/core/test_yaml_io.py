"""core.yaml_io: one-line syntax errors, and where each key and value of a document starts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from losslab.core.yaml_io import (
    MAX_EXPANDED_NODES,
    Mark,
    load_yaml,
    load_yaml_with_positions,
)

TEXT = """\
name: x
budget: {steps: 3, lr: 0.1}
entries:
  - l1
  - loss: mse
    note: >
      folded
"""


def test_positions_of_keys_values_and_list_items() -> None:
    data, positions = load_yaml_with_positions(TEXT, what="test")
    assert data == load_yaml(TEXT, what="test")
    assert positions[()] == Mark(None, (1, 1))
    assert positions[("name",)] == Mark((1, 1), (1, 7))
    assert positions[("budget", "lr")] == Mark((2, 20), (2, 24))  # inside a flow mapping
    assert positions[("entries", 0)] == Mark(None, (4, 5))
    assert positions[("entries", 1, "note")] == Mark((6, 5), (6, 11))


def test_empty_documents_and_syntax_errors() -> None:
    assert load_yaml_with_positions("", what="test") == (None, {})
    with pytest.raises(ValueError, match=r"^config 'c' is not valid YAML \(line 2, column 3: "):
        load_yaml_with_positions("a: 1\n b: [\n", what="config 'c'")


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs" document: ``levels`` lists of ``width`` aliases of the level below
    (``width ** levels`` values once expanded, a few hundred bytes of text)."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + f"\nvalue: *a{levels - 1}\n"


@pytest.mark.parametrize("load", [load_yaml, load_yaml_with_positions])
def test_an_alias_bomb_is_refused_at_once(load: Callable[..., Any]) -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError, match=rf"^file 'b' expands to more than {MAX_EXPANDED_NODES} "
                                         r"YAML values through its aliases"):
        load(alias_bomb(), what="file 'b'")
    assert time.perf_counter() - started < 2.0  # counted on the shared node graph, not expanded


def test_aliases_within_the_limit_are_read_as_before() -> None:
    text = alias_bomb(levels=3, width=3)  # 27 values once expanded
    assert load_yaml(text, what="t") == yaml.safe_load(text)
    data, positions = load_yaml_with_positions(text, what="t")
    assert data == yaml.safe_load(text)
    assert positions[("value", 2, 2, 2)] == positions[("a0", 2)]  # an alias points at its anchor


def test_an_alias_inside_itself_and_deep_nesting_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"^t contains a YAML alias that refers to itself"):
        load_yaml("a: &a [1, *a]\n", what="t")
    with pytest.raises(ValueError, match=r"^t is nested too deeply to read"):
        load_yaml("[" * 5000 + "]" * 5000, what="t")
