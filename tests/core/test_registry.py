"""core.registry: one name table with aliases, sorted listing, lazy loading and the one
"unknown X. Did you mean" message."""

from __future__ import annotations

import pytest

from losslab.core.registry import Registry, suggest


def test_suggest_names_close_spellings_only() -> None:
    assert suggest("unte", ["unet", "autoencoder"]) == " Did you mean 'unet'?"
    assert suggest("zzz", ["unet", "autoencoder"]) == ""


def test_register_get_aliases_and_listing() -> None:
    table: Registry[int] = Registry("colour", plural="colours")
    table.register("red", 1, aliases=("r",))
    table.register("blue", 2)

    @table.decorator("green", aliases=("g", "verde"))
    def green() -> int:
        return 3

    assert table.get("r") == 1 and table.get("verde") is green
    assert table.canonical("g") == "green" and table.aliases_of("green") == ["g", "verde"]
    assert table.names() == ["blue", "green", "red"]
    assert table.names(aliases=True) == ["blue", "g", "green", "r", "red", "verde"]
    assert [name for name, _ in table.items()] == ["blue", "green", "red"]
    assert "r" in table and "x" not in table and len(table) == 3
    table.register("red", 1)  # the same value again is fine
    with pytest.raises(ValueError, match=r"colour name 'r' is already registered to 1"):
        table.register("rouge", 4, aliases=("r",))


def test_unknown_names_get_one_line_with_a_suggestion_and_the_known_names() -> None:
    table: Registry[int] = Registry("model")
    table.register("unet", 1)
    table.register("autoencoder", 2)
    with pytest.raises(ValueError) as error:
        table.get("unte")
    assert str(error.value) == ("unknown model 'unte'. Did you mean 'unet'? Known models: "
                                "autoencoder, unet.")
    with pytest.raises(ValueError, match=r"unknown model \['unet'\]"):
        table.get(["unet"])  # type: ignore[arg-type]  (an unhashable key is just unknown)


def test_the_loader_runs_once_before_the_first_read() -> None:
    calls: list[int] = []
    table: Registry[str] = Registry("task", loader=lambda: (calls.append(1),
                                                             table.register("denoise", "d")))
    assert calls == []  # nothing imported until the table is read
    assert table.names() == ["denoise"] and table.get("denoise") == "d"
    assert calls == [1]
