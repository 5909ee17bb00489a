"""Pydantic's ``ValidationError`` turned into losslab's one-line ``ValueError`` messages.

Pydantic reports every problem of a document at once, over several lines, with its own wording
(``Input should be greater than or equal to 1 [type=greater_than_equal, ...]``). A CLI user gets
one line instead, built from the first problem: the dotted key (``data.crop_size``,
``entries[2].lr``), what the field accepts (the :class:`Expect` text stored with the field's type),
the offending value, a "Did you mean" hint for unknown keys and choices
(:func:`losslab.core.registry.suggest`), and, for a YAML file, the line and column of the key or
value (:func:`losslab.core.yaml_io.load_yaml_with_positions`).

Used by :mod:`losslab.train.config` (``TrainConfig``, ``config.yaml``, overrides) and
:mod:`losslab.experiments.schema` (experiment files); both raise :class:`ConfigError`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from losslab.core.registry import suggest
from losslab.core.yaml_io import Positions


class ConfigError(ValueError):
    """A configuration (training config, override, experiment file) that does not validate.

    The message is one line: the key, what it accepts, what was given and, where known, the file,
    line and column.
    """


@dataclass(frozen=True)
class Expect:
    """What a field accepts, in words, for error messages (``Annotated`` metadata).

    ``Annotated[int, Field(ge=1), Expect("an integer >= 1")]`` makes a bad value read
    ``steps must be an integer >= 1; got 0.`` wherever the type is used.
    """

    text: str


Location = tuple[str | int, ...]


def _unwrap(annotation: Any) -> list[Any]:
    """The member types of ``annotation`` (``Annotated`` and ``X | None`` unwrapped)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [member for arg in typing.get_args(annotation) for member in _unwrap(arg)]
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for member in _unwrap(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _element_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a ``list[Model]`` / ``tuple[Model, ...]`` field's items, if any."""
    for member in _unwrap(annotation):
        if typing.get_origin(member) in (list, tuple):
            for arg in typing.get_args(member):
                found = _model_in(arg)
                if found is not None:
                    return found
    return None


def _expect_in(annotation: Any) -> str | None:
    """The :class:`Expect` text anywhere in ``annotation`` (also inside ``X | None``)."""
    if typing.get_origin(annotation) is typing.Annotated:
        for item in typing.get_args(annotation)[1:]:
            if isinstance(item, Expect):
                return item.text
        return _expect_in(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _expect_in(arg)
            if found:
                return found
    return None


def _literal_choices(annotation: Any) -> tuple[Any, ...]:
    choices: list[Any] = []
    for member in _unwrap(annotation):
        if typing.get_origin(member) is typing.Literal:
            choices.extend(typing.get_args(member))
    return tuple(choices)


def expectation(field: FieldInfo) -> str | None:
    """What ``field`` accepts, in words: its :class:`Expect` text, else its choices."""
    for item in field.metadata:
        if isinstance(item, Expect):
            return item.text
    found = _expect_in(field.annotation)
    if found:
        return found
    choices = _literal_choices(field.annotation)
    if choices:
        return "one of " + ", ".join(map(repr, choices))
    if _model_in(field.annotation) is not None:
        return "a mapping (key: value lines)"
    return None


def dotted(location: Sequence[str | int]) -> str:
    """``('entries', 2, 'lr')`` → ``'entries[2].lr'``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass
class _Resolved:
    """Where a pydantic error location lands in the model tree."""

    field_path: Location  # the location of the deepest field reached
    field: FieldInfo | None  # that field (None when the location stops at a model or an item)
    model: type[BaseModel] | None  # the model the next key would belong to
    rest: Location  # location parts below the field (union tags, tuple indices) or unknown keys


def _resolve(root: type[BaseModel], location: Location) -> _Resolved:
    model: type[BaseModel] | None = root
    items: type[BaseModel] | None = None
    field: FieldInfo | None = None
    path: list[str | int] = []
    for index, part in enumerate(location):
        if model is not None and isinstance(part, str) and part in model.model_fields:
            field = model.model_fields[part]
            path.append(part)
            model, items = _model_in(field.annotation), _element_model(field.annotation)
        elif items is not None and isinstance(part, int):
            path.append(part)
            model, items, field = items, None, None
        else:
            return _Resolved(tuple(path), field, model, tuple(location[index:]))
    return _Resolved(tuple(path), field, model, ())


def _value_at(data: Any, location: Location) -> tuple[bool, Any]:
    for part in location:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, data


def _position(positions: Positions | None, location: Location, *, key: bool) -> str:
    """``'line 3, column 5'`` of the longest known prefix of ``location`` (``''`` if none)."""
    if not positions:
        return ""
    for end in range(len(location), -1, -1):
        mark = positions.get(tuple(location[:end]))
        if mark is not None:
            line, column = mark.key if key and end == len(location) and mark.key else mark.value
            return f"line {line}, column {column}"
    return ""


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _message(error: Mapping[str, Any], resolved: _Resolved, raw: Any, what: str) -> str:
    kind = error["type"]
    location = tuple(error["loc"])
    if kind == "extra_forbidden" and resolved.model is not None and resolved.rest:
        key = str(resolved.rest[0])
        parent = dotted(resolved.field_path)
        valid = list(resolved.model.model_fields)
        hint = getattr(resolved.model, "key_hints", {}).get(key, "")
        return (f"unknown {what} key {dotted((*resolved.field_path, key))!r}."
                f"{' ' + hint if hint else suggest(key, valid)} Valid keys"
                f"{' under ' + parent if parent else ''}: {', '.join(valid)}.")
    found, value = _value_at(raw, resolved.field_path)
    if not found:
        value = error.get("input")
    name = dotted(resolved.field_path)
    if kind in ("value_error", "assertion_error") and "error" in error.get("ctx", {}):
        text = str(error["ctx"]["error"])
        # a field validator's message is a predicate ("must be ..."), a model validator's whole
        return f"{name} {text}" if location and name and not resolved.rest else text
    if kind in ("frozen_instance", "frozen_field"):
        return (f"{name} cannot be changed: a validated {what} is read-only; make a changed copy "
                f"with .model_copy(update={{{str(location[-1])!r}: ...}}).")
    if not name:  # the document itself (not a mapping)
        return (f"the {what} must be a mapping (key: value lines); got "
                f"{type(value).__name__} {_show(value)}.")
    expected = expectation(resolved.field) if resolved.field is not None else None
    if expected is None and resolved.field is None and resolved.model is not None:
        expected = "a mapping (key: value lines)"
    if expected is None:
        return f"{name}: {error['msg'][:1].lower()}{error['msg'][1:]}; got {_show(value)}."
    text = f"{name} must be {expected}; got {_show(value)}."
    choices = _literal_choices(resolved.field.annotation) if resolved.field is not None else ()
    if choices and isinstance(value, str):
        text += suggest(value, [str(choice) for choice in choices])
    return text


def _missing_message(missing: list[_Resolved], root: type[BaseModel]) -> str:
    parent = dotted(missing[0].field_path[:-1])
    model = root
    if parent:
        resolved = _resolve(root, missing[0].field_path[:-1])
        model = resolved.model or root
    keys = [str(item.field_path[-1]) for item in missing]
    if len(keys) == 1:
        field = model.model_fields[keys[0]]
        description = (field.description or "").split(";")[0].rstrip(".")
        where = parent or getattr(model, "document_name", "the file")
        return f"{where} needs {keys[0]!r}{f' ({description})' if description else ''}."
    required = [name for name, field in model.model_fields.items() if field.is_required()]
    return (f"missing required field(s){' in ' + parent if parent else ''}: {', '.join(keys)}. "
            f"{(parent or getattr(model, 'document_name', 'the file')).capitalize()} needs "
            f"{', '.join(required)}.")


def describe_validation_error(
    error: ValidationError,
    model: type[BaseModel],
    raw: Any,
    *,
    what: str = "config",
    origin: str | None = None,
    positions: Positions | None = None,
) -> str:
    """One line for ``error`` (raised validating ``raw`` as ``model``).

    Args:
        what: the kind of document, for messages (``"config"`` → ``unknown config key ...``).
        origin: prefix naming the source (``"config file 'c.yaml'"``); ``None`` = no prefix.
        positions: ``{location: mark}`` from :func:`~losslab.core.yaml_io.load_yaml_with_positions`
            to add the line and column.
    """
    # An unknown key first: a typo ("step") also leaves its intended key ("steps") missing.
    errors = sorted(error.errors(include_url=False), key=lambda item: item["type"] != "extra_forbidden")
    resolved = [_resolve(model, tuple(item["loc"])) for item in errors]
    first, first_resolved = errors[0], resolved[0]
    missing = [r for e, r in zip(errors, resolved, strict=True)
               if e["type"] == "missing" and r.field_path[:-1] == first_resolved.field_path[:-1]]
    if first["type"] == "missing":
        message = _missing_message(missing, model)
        location = first_resolved.field_path[:-1]
        key = False
    else:
        message = _message(first, first_resolved, raw, what)
        location = tuple(first["loc"])
        key = first["type"] == "extra_forbidden"
    problems = {dotted(r.field_path) + ("." + str(r.rest[0]) if r.rest and e["type"] ==
                                        "extra_forbidden" else "")
                for e, r in zip(errors, resolved, strict=True)}
    others = len(problems) - (len(missing) if first["type"] == "missing" else 1)
    if others > 0:
        message += f" ({others} more problem{'s' if others > 1 else ''} after this one.)"
    # a field missing from the whole document has no better place than line 1: leave it out
    where = _position(positions, location, key=key) if location or first["type"] != "missing" \
        else ""
    if origin and where:
        return f"{origin}, {where}: {message}"
    if origin:
        return f"{origin}: {message}"
    return f"{where}: {message}" if where else message


class OneLineErrors(BaseModel):
    """Base of losslab's schema models: building one in code (``DataConfig(crop_size=45)``) or
    assigning a field raises the same one-line :class:`ConfigError` as reading a file, not
    pydantic's multi-line dump.

    Subclasses set ``what`` (the document kind in messages) and ``error_class``.
    """

    what: ClassVar[str] = "config"
    error_class: ClassVar[type[ConfigError]] = ConfigError

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise self.error_class(describe_validation_error(error, type(self), values,
                                                             what=self.what)) from None

    # Pydantic calls a model's own ``__init__`` while validating it as a *nested* field (then our
    # ConfigError would be wrapped into the parent's error and lose its location). Marked as the
    # base ``__init__``, it runs only when a caller constructs the model: ``DataConfig(...)``.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as error:
            raise self.error_class(describe_validation_error(error, type(self), {name: value},
                                                             what=self.what)) from None


def validated(model: type[BaseModel], raw: Any, *, what: str = "config", origin: str | None = None,
              positions: Positions | None = None, context: Mapping[str, Any] | None = None,
              error: type[ConfigError] = ConfigError) -> Any:
    """``model.model_validate(raw)``; a failure raises ``error`` with one line (no pydantic dump)."""
    try:
        return model.model_validate(raw, context=dict(context or {}))
    except ValidationError as failure:
        raise error(describe_validation_error(failure, model, raw, what=what, origin=origin,
                                              positions=positions)) from None


__all__ = ["ConfigError", "Expect", "OneLineErrors", "describe_validation_error", "dotted",
           "expectation", "validated"]
