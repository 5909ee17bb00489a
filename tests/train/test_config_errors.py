"""train.config_errors: pydantic's ValidationError as one line (key, expectation, value, hint)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import pytest
from pydantic import ConfigDict, Field

from losslab.train.config_errors import ConfigError, Expect, OneLineErrors, dotted, validated

Count = Annotated[int, Field(ge=1), Expect("an integer >= 1")]


class Item(OneLineErrors):
    model_config = ConfigDict(extra="forbid", strict=True)

    size: Count = 1
    limit: Count | None = None  # the Expect inside an optional type is found too


class Document(OneLineErrors):
    model_config = ConfigDict(extra="forbid", strict=True)
    document_name: ClassVar[str] = "the document"

    mode: Literal["fast", "exact"] = "fast"
    devices: Annotated[Count | Literal["auto"], Expect("a positive integer or 'auto'")] = 1
    items: list[Item] = Field(default_factory=list)
    title: str = Field(description="what the document is called; shown first")


def _message(raw: object) -> str:
    with pytest.raises(ConfigError) as info:
        validated(Document, raw, what="document", origin="doc.yaml")
    assert "\n" not in str(info.value)
    return str(info.value)


def test_locations_read_as_dotted_keys() -> None:
    assert dotted(("entries", 2, "train_options", "lr")) == "entries[2].train_options.lr"
    assert dotted(()) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"title": "t", "items": [{}, {"limit": 0}]},
         "doc.yaml: items[1].limit must be an integer >= 1; got 0."),
        ({"title": "t", "items": [{"sise": 2}]},
         "doc.yaml: unknown document key 'items[0].sise'. Did you mean 'size'? Valid keys under "
         "items[0]: size, limit."),
        # a union reports one error per member: counted as one problem
        ({"title": "t", "devices": "many"},
         "doc.yaml: devices must be a positive integer or 'auto'; got 'many'."),
        ({"title": "t", "mode": "exakt"},
         "doc.yaml: mode must be one of 'fast', 'exact'; got 'exakt'. Did you mean 'exact'?"),
        ({"mode": "fast"}, "doc.yaml: the document needs 'title' (what the document is called)."),
        ({"title": "t", "items": {"size": 1}},
         "doc.yaml: items: input should be a valid list; got {'size': 1}."),
        ({"title": 5, "mode": "x", "devices": 0},
         "doc.yaml: mode must be one of 'fast', 'exact'; got 'x'. (2 more problems after this one.)"),
    ],
)
def test_one_line_per_document(raw: object, expected: str) -> None:
    assert _message(raw) == expected

