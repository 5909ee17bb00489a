"""The loss spec language: a short string that builds a loss.

Grammar (whitespace is free; the parser and the syntax tree are in
:mod:`losslab.core.spec_tree`)::

    spec     := term ('+' term)*
    term     := [number '*'] call ['*' number] ('@' schedule)*
    call     := NAME ['(' [arg (',' arg)*] ')']
    arg      := NAME '=' value | value
    value    := number | NAME | 'quoted string' | true | false | none | '[' value (',' value)* ']'
    schedule := 'start' '(' int ')' | 'ramp' '(' int ',' int ')' | 'share' '(' number ')'

A term takes at most one of ``start``/``ramp`` and at most one ``share``:
``0.01*perceptual@ramp(100,200)@share(0.2)`` (see :mod:`losslab.losses.share`).

A bare value after ``name=value`` extends that parameter into a list, so
``perceptual(layers=relu1_2,relu2_2, weights=random)`` sets ``layers`` to both names.
Bare values before any ``name=`` fill the loss's positional parameters (``l1(luma)`` sets
``view``). Examples: ``"l1(luma)"``, ``"0.84*ms_ssim + 0.16*l1"``,
``"mse + 0.01*perceptual(layers=relu1_2,relu2_2)@ramp(1000,2000)"``.

This module gives the tree its meaning: each call's name is looked up in the loss registry,
its arguments are matched to the class's parameters, and the schedules become
:class:`~losslab.losses.schedule.WeightSchedule` objects. Errors name the position in the string
and suggest the closest valid name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from losslab.core.registry import suggest
from losslab.core.spec_tree import Call, Schedule, Spec, SpecError, Term, render, spec_error
from losslab.core.spec_tree import parse as parse_tree
from losslab.losses.base import Loss
from losslab.losses.registry import all_loss_names, available_losses, get_loss_entry
from losslab.losses.schedule import CONSTANT, WeightSchedule
from losslab.losses.weighted_sum import WeightedSum

#: ``SpecError`` lives with the parser in core; it is re-exported here and from losslab.losses.
__all__ = ["SpecError", "loss", "parse_spec"]


def _accepts_sequence(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return any(word in text for word in ("Sequence", "list", "tuple", "Iterable"))


def _position(node: Any) -> int:
    """Where a parsed node starts (every node of a parsed tree has a span)."""
    return node.span.start if node.span is not None else 0


def _build_call(spec: str, call: Call, input_range: Iterable[float] | None,
                check_values: bool | None) -> Loss:
    """The module of one call: registry lookup, arguments matched to the class's parameters."""
    try:
        entry = get_loss_entry(call.name)
    except ValueError:
        raise spec_error(
            spec, _position(call),
            f"unknown loss {call.name!r}.{suggest(call.name, all_loss_names())} "
            f"Known losses: {', '.join(available_losses())}",
        ) from None
    names = entry.parameter_names()
    positional = call.positional
    if len(positional) > len(entry.positional):
        allowed = ", ".join(entry.positional) or "none"
        raise spec_error(
            spec, _position(positional[len(entry.positional)]),
            f"loss {call.name!r} takes {len(entry.positional)} positional value(s) ({allowed}); "
            f"give the others as name=value (parameters: {', '.join(names)})",
        )
    kwargs: dict[str, Any] = {}
    hints = {p.name: p.annotation for p in entry.parameters}
    given: list[tuple[str, Any, int]] = []  # (parameter, value, position) for error pointers
    for argument, name in zip(positional, entry.positional, strict=False):
        value = argument.value
        kwargs[name] = _null_or_string(value, hints.get(name, ""))
        given.append((name, value, _position(argument)))
    for argument in call.keywords:
        key, value = str(argument.name), argument.value
        position = _position(argument.values[0])
        if key not in names:
            raise spec_error(
                spec, _position(argument),
                f"loss {call.name!r} has no parameter {key!r}.{suggest(key, names)} "
                f"Parameters: {', '.join(names)}",
            )
        if key in kwargs:
            raise spec_error(spec, position, f"parameter {key!r} is given twice")
        hint = hints.get(key, "")
        if argument.continued and not _accepts_sequence(hint):
            raise spec_error(spec, position, f"parameter {key!r} of {call.name!r} takes one value, "
                                             f"got {len(value)}: {', '.join(map(str, value))}")
        if _accepts_sequence(hint) and isinstance(value, str):
            value = [value]
        kwargs[key] = value if argument.continued else _null_or_string(value, hint)
        given.append((key, value, position))
    if "input_range" in names and input_range is not None:
        kwargs.setdefault("input_range", tuple(input_range))
    if "check_values" in names and check_values is not None:
        kwargs.setdefault("check_values", check_values)
    try:
        module = entry.cls(**kwargs)
    except (ValueError, TypeError, OverflowError) as error:  # Overflow: a 400-digit integer
        position = _blamed_position(str(error), given, _position(call))
        raise spec_error(spec, position, f"cannot build {call.name!r}: {error}") from None
    module.term_name = _call_text(spec, call)
    if input_range is not None:
        module.set_input_range(input_range)
    return module


def _call_text(spec: str, call: Call) -> str:
    """The call's own text from the spec (the term's log name), whitespace removed."""
    text = call.span.text(spec) if call.span is not None else render(call)
    return re.sub(r"\s+", "", text)


def _schedule(spec: str, term: Term) -> WeightSchedule:
    """The term's :class:`WeightSchedule` (``CONSTANT`` itself when it has no schedule)."""
    schedule = CONSTANT
    for node in term.schedules:
        schedule = _apply_schedule(spec, node, schedule)
    return schedule


def _apply_schedule(spec: str, node: Schedule, previous: WeightSchedule) -> WeightSchedule:
    try:
        if node.kind == "share":  # float(text): an overflowing fraction reads as inf
            return WeightSchedule(previous.kind, previous.begin, previous.end,
                                  share=float(node.arguments[0].text))
        steps = [int(number.value) for number in node.arguments]
        return WeightSchedule(node.kind, *steps, share=previous.share)
    except (ValueError, OverflowError) as error:
        raise spec_error(spec, _position(node), str(error)) from None


def _null_or_string(value: Any, annotation: str) -> Any:
    """The bare word ``none`` is ``None``, except for a parameter that cannot take ``None``
    (e.g. ``reduction``, where ``'none'`` is a valid choice): there it is the string."""
    if value is None and annotation and "None" not in annotation and "Any" not in annotation:
        return "none"
    return value


def _blamed_position(message: str, given: list[tuple[str, Any, int]], default: int) -> int:
    """Position of the one given parameter a construction error is about, else ``default``.

    A parameter is blamed when the message names it as a word or quotes one of its string
    values (``unknown colour view 'lumaa'``); values are preferred over names.
    """
    by_value, by_name = [], []
    for name, value, position in given:
        items = value if isinstance(value, list) else [value]
        if any(isinstance(item, str) and repr(item) in message for item in items):
            by_value.append(position)
        elif re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message):
            by_name.append(position)
    for candidates in (by_value, by_name):
        if len(candidates) == 1:
            return candidates[0]
    return default


def parse_spec(
    spec: str | Spec,
    *,
    input_range: Iterable[float] | None = None,
    check_values: bool | None = None,
) -> Loss:
    """Build a loss from a spec string or tree (see the module docstring for the grammar).

    A spec with a single unweighted, unscheduled term returns that term's module; anything else
    returns a :class:`~losslab.losses.weighted_sum.WeightedSum`.

    Args:
        spec: e.g. ``"mse + 0.01*perceptual(layers=relu1_2,relu2_2, weights=random)"``, or a
            :class:`~losslab.core.spec_tree.Spec` tree (built from its canonical text).
        input_range: the inputs' value range for every term, e.g. ``(-1, 1)``; default ``(0, 1)``.
        check_values: run the syncing NaN/range checks (``None``: the global switch).
    """
    if isinstance(spec, Spec):
        spec = render(spec)
    if not isinstance(spec, str):
        raise TypeError(f"a loss spec must be a string such as 'l1(luma)'; got {type(spec).__name__}.")
    tree = parse_tree(spec)
    # Schedules are checked for every term before any module is built, as the parser did
    # before the tree existed: a bad ramp is reported before an unknown loss further right.
    schedules = [_schedule(spec, term) for term in tree.terms]
    modules = [_build_call(spec, term.call, input_range, check_values) for term in tree.terms]
    weights = [term.factor for term in tree.terms]
    if len(modules) == 1 and weights[0] == 1.0 and schedules[0] is CONSTANT:
        return modules[0]
    try:
        total = WeightedSum(modules, weights, schedules)
    except ValueError as error:  # e.g. share targets that cannot all be met
        raise SpecError(f"{error}\n  in loss spec: {spec}") from None
    if check_values is not None:
        total.check_values = check_values
    return total


def loss(
    spec: str | Spec | Loss,
    *,
    input_range: Iterable[float] | None = None,
    check_values: bool | None = None,
) -> Loss:
    """Build any loss from a spec string or tree (or pass a ready module through, re-ranged if
    asked).

    Calling the result with ``(prediction, target)``, both ``(N, C, H, W)`` in ``input_range``,
    returns a scalar tensor.

    Example:
        >>> import torch, losslab
        >>> criterion = losslab.loss("l1(luma)")
        >>> x = torch.rand(2, 3, 16, 16)
        >>> float(criterion(x, x))
        0.0
    """
    if isinstance(spec, Loss):
        if input_range is not None:
            spec.set_input_range(input_range)
        if check_values is not None:
            spec.check_values = check_values
        return spec
    return parse_spec(spec, input_range=input_range, check_values=check_values)


