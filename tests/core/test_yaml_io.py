"""core.yaml_io: one-line syntax errors, and where each key and value of a document starts."""

from __future__ import annotations

import pytest

from losslab.core.yaml_io import Mark, load_yaml, load_yaml_with_positions

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
