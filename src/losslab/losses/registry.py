"""One table of loss names: registration, listing, construction and the spec parser use it.

A loss class is registered with :func:`register_loss`; its parameters, their defaults and its
one-line description are read from its ``__init__`` signature and docstring, so listing
(``losslab losses``) and the spec parser never drift from the code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from losslab.core.registry import Registry, suggest

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class Parameter:
    """One constructor parameter of a registered loss, as shown by ``losslab losses``."""

    name: str
    annotation: str
    default: Any
    required: bool

    def render(self) -> str:
        if self.required:
            return f"{self.name}: {self.annotation}"
        return f"{self.name}={self.default!r}"


@dataclass(frozen=True)
class LossEntry:
    """A registry row: spec name, class, description, parameters and the positional parameter."""

    name: str
    cls: type
    description: str
    parameters: tuple[Parameter, ...]
    positional: tuple[str, ...]

    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)


#: Filled by ``@register_loss`` as each loss module is imported; ``losslab/losses/__init__.py``
#: imports every one (importing this module imports that package first), so the table is full
#: before anyone can read it.
LOSSES: Registry[LossEntry] = Registry("loss", plural="losses")


def _describe(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.strip().splitlines()[0] if doc.strip() else cls.__name__


def _parameters(cls: type) -> tuple[Parameter, ...]:
    signature = inspect.signature(cls.__init__)
    result = []
    for name, param in list(signature.parameters.items())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = param.annotation
        if annotation is inspect.Parameter.empty:
            text = "Any"
        elif isinstance(annotation, str):
            text = annotation
        else:
            text = getattr(annotation, "__name__", repr(annotation))
        required = param.default is inspect.Parameter.empty
        result.append(Parameter(name, text, None if required else param.default, required))
    return tuple(result)


def register_loss(
    name: str, *, positional: tuple[str, ...] = (), aliases: tuple[str, ...] = ()
) -> Callable[[T], T]:
    """Class decorator: register a loss under ``name`` (and ``aliases``) for specs and listing.

    ``positional`` names the parameters that a spec may give without ``name=``, in order
    (``l1(luma)`` sets ``view``).
    """

    def decorator(cls: T) -> T:
        entry = LossEntry(name, cls, _describe(cls), _parameters(cls), positional)
        LOSSES.register(name, entry, aliases=aliases)
        cls.registered_name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def get_loss_entry(name: str) -> LossEntry:
    """Look a loss up by name or alias; an unknown name raises with the closest valid names."""
    return LOSSES.get(name)


def available_losses() -> list[str]:
    """Registered loss names (aliases excluded), sorted."""
    return LOSSES.names()


def all_loss_names() -> list[str]:
    """Every name a spec accepts, aliases included, sorted."""
    return LOSSES.names(aliases=True)


def loss_entries() -> list[LossEntry]:
    """Every registry row (aliases excluded), sorted by name."""
    return [entry for _, entry in LOSSES.items()]


def aliases_of(name: str) -> list[str]:
    """Other names that refer to the same loss as ``name``."""
    return LOSSES.aliases_of(name)


def build_loss(name: str, *args: Any, **kwargs: Any) -> Any:
    """Construct the loss registered as ``name`` with the given arguments."""
    entry = get_loss_entry(name)
    unknown = [key for key in kwargs if key not in entry.parameter_names()]
    if unknown:
        key = unknown[0]
        raise ValueError(
            f"loss {name!r} has no parameter {key!r}.{suggest(key, entry.parameter_names())} "
            f"Parameters of {name!r}: {', '.join(entry.parameter_names()) or 'none'}."
        )
    return entry.cls(*args, **kwargs)


def format_loss_table() -> str:
    """Human-readable listing of every loss: name, parameters, description (``losslab losses``)."""
    lines = []
    for entry in loss_entries():
        aliases = aliases_of(entry.name)
        alias_text = f"  (alias: {', '.join(aliases)})" if aliases else ""
        lines.append(f"{entry.name}{alias_text}")
        lines.append(f"    {entry.description}")
        params = [p.render() for p in entry.parameters]
        if params:
            lines.append(f"    parameters: {', '.join(params)}")
        if entry.positional:
            lines.append(f"    positional: {', '.join(entry.positional)}")
    return "\n".join(lines)
