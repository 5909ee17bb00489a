"""The loss spec language: a short string that builds a loss.

Grammar (whitespace is free)::

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

Errors name the position in the string and suggest the closest valid name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from losslab.core.registry import suggest
from losslab.losses.base import CONSTANT, Loss, WeightedSum, WeightSchedule
from losslab.losses.registry import all_loss_names, available_losses, get_loss_entry

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'[^']*'|\"[^\"]*\")|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_.\-/~]*)"
    r"|(?P<op>[-+*()\[\],=@]))"
)


class SpecError(ValueError):
    """A loss spec that cannot be parsed or built; the message shows where and how to fix it."""


@dataclass
class _Token:
    kind: str
    text: str
    position: int


#: Deepest list nesting accepted in a parameter value (a view matrix needs 2).
MAX_NESTING = 8


def _tokenize(spec: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(spec):
        if spec[position].isspace():
            position += 1
            continue
        match = _TOKEN.match(spec, position)
        if not match or match.end() == position:
            hint = ""
            if spec[position] in "/.~\\:":  # an unquoted file path such as weights=/data/x.pth
                path = re.split(r"[\s,)]", spec[position:], maxsplit=1)[0]
                keyword = tokens[-2].text + "=" if len(tokens) >= 2 and tokens[-1].text == "=" else ""
                hint = f" (quote file paths: {keyword}'{path}')"
            raise _error(spec, position, f"unexpected character {spec[position]!r}{hint}")
        kind = match.lastgroup or "op"
        start = match.start(kind)
        tokens.append(_Token(kind, match.group(kind), start))
        position = match.end()
    tokens.append(_Token("end", "", len(spec)))
    return tokens


def _error(spec: str, position: int, message: str) -> SpecError:
    pointer = " " * position + "^"
    return SpecError(f"{message} at position {position} in loss spec:\n  {spec}\n  {pointer}")


@dataclass
class _Call:
    name: str
    position: int
    args: list[tuple[Any, int]] = field(default_factory=list)
    kwargs: dict[str, tuple[Any, int]] = field(default_factory=dict)


class _Parser:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.tokens = _tokenize(spec)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def take(self, text: str | None = None, kind: str | None = None) -> _Token:
        token = self.current
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            expected = repr(text) if text is not None else f"a {kind}"
            found = repr(token.text) if token.kind != "end" else "the end of the spec"
            raise _error(self.spec, token.position, f"expected {expected}, found {found}")
        self.index += 1
        return token

    def at(self, text: str) -> bool:
        return self.current.kind == "op" and self.current.text == text

    def parse(self) -> list[tuple[float, _Call, WeightSchedule]]:
        if self.current.kind == "end":
            raise _error(self.spec, 0, "empty loss spec (try 'l1' or 'mse + 0.01*perceptual')")
        terms = [self.term()]
        while self.at("+"):
            self.take("+")
            terms.append(self.term())
        if self.current.kind != "end":
            raise _error(
                self.spec, self.current.position,
                f"unexpected {self.current.text!r} (terms are joined with '+')",
            )
        return terms

    def number(self) -> float:
        token = self.take(kind="number")
        return float(token.text)

    def term(self) -> tuple[float, _Call, WeightSchedule]:
        weight = 1.0
        if self.current.kind == "number":
            weight = self.number()
            self.take("*")
        call = self.call()
        if self.at("*"):
            self.take("*")
            weight *= self.number()
        schedule = CONSTANT
        while self.at("@"):
            self.take("@")
            schedule = self.schedule(schedule)
        return weight, call, schedule

    def schedule(self, previous: WeightSchedule) -> WeightSchedule:
        token = self.take(kind="name")
        if token.text not in ("start", "ramp", "share"):
            raise _error(
                self.spec, token.position,
                f"unknown weight schedule {token.text!r}; use start(STEP), ramp(BEGIN, END) or "
                "share(FRACTION)",
            )
        if token.text == "share":
            return self.share(token, previous)
        if previous.kind != "constant":
            raise _error(self.spec, token.position,
                         f"a term takes one of start/ramp; it already has {previous.render()}")
        self.take("(")
        numbers = [self.number()]
        while self.at(","):
            self.take(",")
            numbers.append(self.number())
        close = self.take(")")
        expected = 1 if token.text == "start" else 2
        if len(numbers) != expected or any(not math.isfinite(n) or n != int(n) for n in numbers):
            raise _error(
                self.spec, close.position,
                f"{token.text} takes {expected} integer step(s); e.g. "
                + ("start(500)" if expected == 1 else "ramp(1000, 2000)"),
            )
        try:
            return WeightSchedule(token.text, *map(int, numbers), share=previous.share)
        except ValueError as error:
            raise _error(self.spec, token.position, str(error)) from None

    def share(self, token: _Token, previous: WeightSchedule) -> WeightSchedule:
        if previous.share is not None:
            raise _error(self.spec, token.position, "a term takes one share(...)")
        self.take("(")
        fraction = self.number()
        self.take(")")
        try:
            return WeightSchedule(previous.kind, previous.begin, previous.end, share=fraction)
        except ValueError as error:
            raise _error(self.spec, token.position, str(error)) from None

    def call(self) -> _Call:
        token = self.current
        if token.kind != "name":
            found = repr(token.text) if token.kind != "end" else "the end of the spec"
            raise _error(self.spec, token.position, f"expected a loss name, found {found}")
        self.take()
        call = _Call(token.text, token.position)
        if not self.at("("):
            return call
        self.take("(")
        last_keyword: str | None = None
        while not self.at(")"):
            if self.current.kind == "name" and self.tokens[self.index + 1].text == "=":
                key = self.take().text
                self.take("=")
                if key in call.kwargs:
                    raise _error(self.spec, self.tokens[self.index - 2].position,
                                 f"parameter {key!r} is given twice")
                position = self.current.position
                call.kwargs[key] = (self.value(), position)
                last_keyword = key
            else:
                position = self.current.position
                value = self.value()
                if last_keyword is None:
                    call.args.append((value, position))
                else:  # 'layers=relu1_2,relu2_2': a bare value extends the last keyword
                    previous, start = call.kwargs[last_keyword]
                    items = previous if isinstance(previous, _ListValue) else _ListValue([previous])
                    items.append(value)
                    call.kwargs[last_keyword] = (items, start)
            if not self.at(")"):
                self.take(",")
        self.take(")")
        return call

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_NESTING:  # deeper lists would exhaust Python's recursion limit
            raise _error(self.spec, self.current.position,
                         f"values are nested more than {MAX_NESTING} lists deep; a colour view "
                         "matrix needs 2 (view=[[0.299, 0.587, 0.114]])")
        if self.at("-"):  # a negative parameter value, e.g. view=[[1, -1, 0]]
            self.take("-")
            number = self.value(depth + 1)
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise _error(self.spec, self.tokens[self.index - 1].position, "expected a number after '-'")
            return -number
        token = self.current
        if token.kind == "number":
            self.take()
            number = float(token.text)
            return int(number) if re.fullmatch(r"\d+", token.text) else number
        if token.kind == "string":
            self.take()
            return token.text[1:-1]
        if token.kind == "name":
            self.take()
            lowered = token.text.lower()
            return {"true": True, "false": False, "none": None}.get(lowered, token.text)
        if self.at("["):
            self.take("[")
            items = []
            while not self.at("]"):
                items.append(self.value(depth + 1))
                if not self.at("]"):
                    self.take(",")
            self.take("]")
            return items
        found = repr(token.text) if token.kind != "end" else "the end of the spec"
        raise _error(self.spec, token.position, f"expected a value, found {found}")


class _ListValue(list):
    """A list made by comma continuation (distinguished from a bracketed list)."""


def _accepts_sequence(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return any(word in text for word in ("Sequence", "list", "tuple", "Iterable"))


def _build_call(spec: str, call: _Call, input_range: Iterable[float] | None,
                check_values: bool | None) -> Loss:
    try:
        entry = get_loss_entry(call.name)
    except ValueError:
        raise _error(
            spec, call.position,
            f"unknown loss {call.name!r}.{suggest(call.name, all_loss_names())} "
            f"Known losses: {', '.join(available_losses())}",
        ) from None
    names = entry.parameter_names()
    if len(call.args) > len(entry.positional):
        value, position = call.args[len(entry.positional)]
        allowed = ", ".join(entry.positional) or "none"
        raise _error(
            spec, position,
            f"loss {call.name!r} takes {len(entry.positional)} positional value(s) ({allowed}); "
            f"give the others as name=value (parameters: {', '.join(names)})",
        )
    kwargs: dict[str, Any] = {}
    hints = {p.name: p.annotation for p in entry.parameters}
    given: list[tuple[str, Any, int]] = []  # (parameter, value, position) for error pointers
    for (value, position), name in zip(call.args, entry.positional, strict=False):
        kwargs[name] = _null_or_string(value, hints.get(name, ""))
        given.append((name, value, position))
    for key, (value, position) in call.kwargs.items():
        if key not in names:
            raise _error(
                spec, position - len(key) - 1,
                f"loss {call.name!r} has no parameter {key!r}.{suggest(key, names)} "
                f"Parameters: {', '.join(names)}",
            )
        if key in kwargs:
            raise _error(spec, position, f"parameter {key!r} is given twice")
        if isinstance(value, _ListValue) and not _accepts_sequence(hints.get(key, "")):
            raise _error(spec, position, f"parameter {key!r} of {call.name!r} takes one value, "
                                         f"got {len(value)}: {', '.join(map(str, value))}")
        if _accepts_sequence(hints.get(key, "")) and isinstance(value, str):
            value = [value]
        kwargs[key] = list(value) if isinstance(value, _ListValue) else _null_or_string(value, hints.get(key, ""))
        given.append((key, value, position))
    if "input_range" in names and input_range is not None:
        kwargs.setdefault("input_range", tuple(input_range))
    if "check_values" in names and check_values is not None:
        kwargs.setdefault("check_values", check_values)
    try:
        module = entry.cls(**kwargs)
    except (ValueError, TypeError) as error:
        position = _blamed_position(str(error), given, call.position)
        raise _error(spec, position, f"cannot build {call.name!r}: {error}") from None
    module.term_name = spec_text_of(spec, call)
    if input_range is not None:
        module.set_input_range(input_range)
    return module


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


def spec_text_of(spec: str, call: _Call) -> str:
    """The call's own text from the spec (used as the term's log name), whitespace squeezed."""
    start = call.position
    depth = 0
    end = start
    for end in range(start, len(spec)):
        char = spec[end]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                end += 1
                break
        elif depth == 0 and char in "+*@ ":
            break
    else:
        end = len(spec)
    return re.sub(r"\s+", "", spec[start:end])


def parse_spec(
    spec: str,
    *,
    input_range: Iterable[float] | None = None,
    check_values: bool | None = None,
) -> Loss:
    """Build a loss from a spec string (see the module docstring for the grammar).

    A spec with a single unweighted, unscheduled term returns that term's module; anything else
    returns a :class:`~losslab.losses.base.WeightedSum`.

    Args:
        spec: e.g. ``"mse + 0.01*perceptual(layers=relu1_2,relu2_2, weights=random)"``.
        input_range: the inputs' value range for every term, e.g. ``(-1, 1)``; default ``(0, 1)``.
        check_values: run the syncing NaN/range checks (``None``: the global switch).
    """
    if not isinstance(spec, str):
        raise TypeError(f"a loss spec must be a string such as 'l1(luma)'; got {type(spec).__name__}.")
    parsed = _Parser(spec).parse()
    modules = [_build_call(spec, call, input_range, check_values) for _, call, _ in parsed]
    if len(parsed) == 1 and parsed[0][0] == 1.0 and parsed[0][2] is CONSTANT:
        return modules[0]
    try:
        total = WeightedSum(modules, [w for w, _, _ in parsed], [s for _, _, s in parsed])
    except ValueError as error:  # e.g. share targets that cannot all be met
        raise SpecError(f"{error}\n  in loss spec: {spec}") from None
    if check_values is not None:
        total.check_values = check_values
    return total


def loss(
    spec: str | Loss,
    *,
    input_range: Iterable[float] | None = None,
    check_values: bool | None = None,
) -> Loss:
    """Build any loss from a spec string (or pass a ready module through, re-ranged if asked).

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


