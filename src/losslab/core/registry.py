"""One name table for every kind of named thing in losslab (losses, models, data sets,
discriminators, colour views, pretrained weights, tasks, metrics, perturbations).

Every table registers names (and aliases) once, lists them sorted, and answers an unknown name
with the same one-line error: ``unknown model 'unte'. Did you mean 'unet'? Known models: ...``.
Tables whose entries register themselves on import (losses, models) pass a ``loader`` that
imports the registering modules the first time the table is read, so a lookup never depends on
what the caller happened to import first.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

V = TypeVar("V")
F = TypeVar("F")


def suggest(name: str, known: Iterable[str]) -> str:
    """A ``' Did you mean ...?'`` hint for a misspelt ``name``, or ``''`` when nothing is close."""
    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(map(repr, close))}?" if close else ""


class Registry(Generic[V]):
    """A name → value table with aliases, sorted listing and "did you mean" errors.

    Args:
        kind: what one entry is, for messages (``"loss"``, ``"colour view"``).
        plural: plural of ``kind`` (default ``kind + "s"``).
        loader: called once before the first read, to import modules that register entries.

    Example::

        MODELS: Registry[type] = Registry("model")

        @MODELS.decorator("unet")
        class UNet(nn.Module): ...

        MODELS.get("unte")  # ValueError: unknown model 'unte'. Did you mean 'unet'? Known ...
    """

    def __init__(
        self, kind: str, *, plural: str | None = None, loader: Callable[[], None] | None = None
    ) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._entries: dict[str, V] = {}
        self._canonical: dict[str, str] = {}  # every accepted key -> its canonical name
        self._loader = loader
        self._loaded = loader is None

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # set first: the loader's imports call register()
            assert self._loader is not None
            self._loader()

    def register(self, name: str, value: V, *, aliases: Iterable[str] = ()) -> V:
        """Add ``value`` under ``name`` and ``aliases``; a name taken by another value raises."""
        for key in (name, *aliases):
            taken = self._canonical.get(key)
            if taken is not None and self._entries[taken] is not value:
                raise ValueError(
                    f"{self.kind} name {key!r} is already registered to {self._entries[taken]!r}."
                )
            self._canonical[key] = name
        self._entries[name] = value
        return value

    def decorator(self, name: str, *, aliases: Iterable[str] = ()) -> Callable[[F], F]:
        """Decorator form of :meth:`register` for classes and functions."""

        def decorate(value: F) -> F:
            self.register(name, value, aliases=aliases)  # type: ignore[arg-type]
            return value

        return decorate

    def canonical(self, name: str) -> str:
        """The canonical name of ``name`` (itself or the name an alias points to)."""
        self._load()
        try:
            return self._canonical[name]
        except (KeyError, TypeError):
            raise ValueError(self.unknown_message(name)) from None

    def get(self, name: str) -> V:
        """The value registered as ``name`` (or an alias of it); unknown names raise ValueError."""
        return self._entries[self.canonical(name)]

    def unknown_message(self, name: object) -> str:
        """``unknown <kind> 'x'. Did you mean ...? Known <kinds>: a, b, c.``"""
        self._load()
        return (
            f"unknown {self.kind} {name!r}.{suggest(str(name), self._canonical)} "
            f"Known {self.plural}: {', '.join(self.names())}."
        )

    def names(self, *, aliases: bool = False) -> list[str]:
        """Registered names, sorted; with ``aliases=True`` every accepted key."""
        self._load()
        return sorted(self._canonical if aliases else self._entries)

    def aliases_of(self, name: str) -> list[str]:
        """Other keys that refer to the same entry as ``name``, sorted."""
        canonical = self.canonical(name)
        return sorted(k for k, v in self._canonical.items() if v == canonical and k != canonical)

    def items(self) -> Iterator[tuple[str, V]]:
        """(canonical name, value) pairs in name order."""
        self._load()
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._canonical

    def __len__(self) -> int:
        self._load()
        return len(self._entries)
