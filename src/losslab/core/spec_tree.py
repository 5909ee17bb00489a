"""The loss spec language as a syntax tree: parse a spec, render it back, edit it.

This module is the language's syntax only: it knows the grammar, not the losses. Whether a
name is a registered loss, which parameters it takes and what they mean is decided by
:mod:`losslab.losses.spec`, which builds modules from the tree.

Grammar (whitespace between tokens is free)::

    spec     := term ('+' term)*
    term     := [number '*'] call ['*' number] ('@' schedule)*
    call     := NAME ['(' [arg (',' arg)*] ')']
    arg      := NAME '=' value (',' value)* | value
    value    := ['-'] number | NAME | 'quoted' | "quoted" | true | false | none
              | '[' [value (',' value)*] ']'
    schedule := 'start' '(' int ')' | 'ramp' '(' int ',' int ')' | 'share' '(' number ')'

A term takes at most one of ``start``/``ramp`` and at most one ``share``. Values after
``name=value`` that are not themselves ``name=`` extend that argument into a list
(``layers=relu1_2,relu2_2``); bare values before the first ``name=`` are positional.
``true``/``false``/``none`` are constants in any letter case. ``NAME`` is
``[A-Za-z_][A-Za-z0-9_.-/~]*``; a number is ``12``, ``0.5``, ``.5``, ``1e-3`` (an integer when
written with digits only).

The tree (frozen dataclasses, so trees are values that can be compared and hashed)::

    Spec(terms)
      Term(call, weight, trailing_weight, schedules)      0.5*l1(luma)*2@start(10)@share(0.2)
        Call(name, arguments)                             l1(luma)
          Argument(values, name)                          luma / layers=relu1_2,relu2_2
            Number | Name | String | Constant | ListValue
        Schedule(kind, arguments)                         start(10) / ramp(1,2) / share(0.2)

Every node parsed from text carries its :class:`Span` in that text (``span``, half-open
character offsets; a keyword-only field, ``None`` on nodes built in code). Equality and
hashing ignore spans: two spellings of one spec parse to equal trees.
Every node checks on construction that it renders to text that parses back to itself, so any
tree that can be built can be rendered.

Canonical text (what :func:`render` writes, and so the one spelling of each tree):

- terms joined by ``" + "``; a weight written ``W*`` before the call and ``*W`` after it,
  where it was written (both may be present), with no spaces around ``*``;
- arguments joined by ``", "``; a keyword argument is ``name=value``; the values of a
  continued argument joined by ``","`` (``layers=relu1_2,relu2_2``); bracketed lists
  ``[1, -1, 0]``; a call without arguments has no parentheses (``perceptual()`` renders
  ``perceptual``); arguments stay in the order written;
- schedules ``@start(S)``, ``@ramp(B,E)``, ``@share(F)`` in the order written, with no space
  (the form :meth:`losslab.losses.schedule.WeightSchedule.render` writes); integer-valued steps
  are written as integers (``start(1e3)`` renders ``start(1000)``);
- an integer as its decimal digits without leading zeros; any other number as the shortest
  text that reads back as the same float (Python's ``repr``), with the exponent written
  ``e-5``/``e16`` rather than ``e-05``/``e+16`` (``1e-2`` renders ``0.01``, ``5.`` renders
  ``5.0``); a number too large for a float (``1e400``) reads as infinity and renders
  ``1e999``;
- constants in lower case (``True`` renders ``true``); strings in single quotes, or in
  double quotes when they contain a single quote; names as written.

:func:`render_edit` renders an edited tree reusing the original text of every part the edit
did not change, so an edit (``with_perceptual_weights`` in :mod:`losslab.experiments.specs`)
does not re-spell the rest of a user's spec.

Errors are :class:`SpecError` (a ``ValueError``) with the position and a caret under it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

#: Deepest list nesting accepted in a value (a colour view matrix needs 2).
MAX_NESTING = 8

#: The weight schedules and how many numbers each takes.
SCHEDULE_ARITY = {"start": 1, "ramp": 2, "share": 1}

#: The constants and their Python values (matched in any letter case).
CONSTANTS: dict[str, bool | None] = {"true": True, "false": False, "none": None}

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.\-/~]*"
NUMBER_PATTERN = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NAME = re.compile(NAME_PATTERN)
_TOKEN = re.compile(
    rf"\s*(?:(?P<string>'[^']*'|\"[^\"]*\")|(?P<number>{NUMBER_PATTERN})|(?P<name>{NAME_PATTERN})"
    r"|(?P<op>[-+*()\[\],=@]))"
)


class SpecError(ValueError):
    """A loss spec that cannot be parsed or built; the message shows where and how to fix it."""


def spec_error(spec: str, position: int, message: str) -> SpecError:
    """A :class:`SpecError` saying ``message at position P`` with the spec and a caret under P.

    Args:
        spec: the whole spec text.
        position: character offset in ``spec`` (0-based) the caret points at.
        message: what is wrong and how to fix it.
    """
    pointer = " " * position + "^"
    return SpecError(f"{message} at position {position} in loss spec:\n  {spec}\n  {pointer}")


@dataclass(frozen=True)
class Span:
    """Where a node was written: characters ``start`` (inclusive) to ``end`` (exclusive)."""

    start: int
    end: int

    def text(self, source: str) -> str:
        """The node's own text in ``source``."""
        return source[self.start : self.end]


def _set(node: object, name: str, value: object) -> None:
    object.__setattr__(node, name, value)  # normalise a field of a frozen dataclass


# -- values --------------------------------------------------------------------------------------

def _number_text(value: int | float) -> str:
    """Canonical text of a number (see the module docstring)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a spec number must be an int or a float; got {type(value).__name__}.")
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        raise ValueError("a spec number cannot be NaN: no spec text reads as NaN.")
    if math.isinf(value):
        return "1e999" if value > 0 else "-1e999"
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    if exponent:
        text = f"{mantissa}e{int(exponent)}"
    return text


def _number_value(text: str) -> int | float:
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


@dataclass(frozen=True)
class Number:
    """A number, kept as its canonical text (so ``1`` and ``1.0`` are different trees).

    Build one from a value with :meth:`of`; ``Number("1e-2")`` raises (not canonical).
    """

    text: str
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not re.fullmatch(rf"-?{NUMBER_PATTERN}", self.text):
            raise ValueError(f"Number takes the text of a number such as '0.5'; got {self.text!r}.")
        canonical = _number_text(_number_value(self.text))
        if canonical != self.text:
            raise ValueError(f"Number text must be canonical: {canonical!r}, not {self.text!r} "
                             f"(use Number.of(value)).")

    @classmethod
    def of(cls, value: int | float, *, span: Span | None = None) -> Number:
        """The number node of an ``int`` or a finite or infinite ``float`` (not NaN, not bool)."""
        return cls(_number_text(value), span=span)

    @property
    def value(self) -> int | float:
        """The Python value: an ``int`` when written with digits only, else a ``float``."""
        return _number_value(self.text)

    @property
    def negative(self) -> bool:
        """Whether the number is written with a minus sign (``-0.0`` is; weights may not be)."""
        return self.text.startswith("-")


@dataclass(frozen=True)
class Name:
    """A bare word (``luma``, ``relu1_2``); ``true``/``false``/``none`` are :class:`Constant`."""

    text: str
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not _NAME.fullmatch(self.text):
            raise ValueError(f"a spec name matches {NAME_PATTERN}; got {self.text!r}.")
        if self.text.lower() in CONSTANTS:
            raise ValueError(f"{self.text!r} is a constant, not a name: use Constant("
                             f"{CONSTANTS[self.text.lower()]!r}).")

    @property
    def value(self) -> str:
        """The word itself (a loss's parameter decides what it means)."""
        return self.text


@dataclass(frozen=True)
class String:
    """A quoted string (``'/data/my vgg.pth'``); it cannot hold both kinds of quote."""

    text: str
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"String takes a str; got {type(self.text).__name__}.")
        if "'" in self.text and '"' in self.text:
            raise ValueError(f"a spec string cannot contain both ' and \"; got {self.text!r}.")

    @property
    def value(self) -> str:
        """The text between the quotes."""
        return self.text


@dataclass(frozen=True)
class Constant:
    """``true``, ``false`` or ``none``."""

    value: bool | None
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        if not (self.value is None or isinstance(self.value, bool)):
            raise ValueError(f"Constant takes True, False or None; got {self.value!r}.")


@dataclass(frozen=True)
class ListValue:
    """A bracketed list ``[a, b, ...]`` (items are values, lists nest up to MAX_NESTING deep)."""

    items: tuple[Value, ...]
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "items", tuple(self.items))
        for item in self.items:
            _check_value(item)
        if self.depth > MAX_NESTING:
            raise ValueError(f"lists nest at most {MAX_NESTING} deep; this one is {self.depth}.")

    @property
    def depth(self) -> int:
        """How many lists deep this one goes (``[1]``: 1, ``[[1]]``: 2)."""
        return 1 + max((item.depth for item in self.items if isinstance(item, ListValue)),
                       default=0)

    @property
    def value(self) -> list[object]:
        """The Python list of the items' values (nested lists for nested brackets)."""
        return [item.value for item in self.items]


Value = Number | Name | String | Constant | ListValue
_VALUE_TYPES = (Number, Name, String, Constant, ListValue)


def _check_value(value: object) -> None:
    if not isinstance(value, _VALUE_TYPES):
        raise TypeError(f"a spec value is a Number, Name, String, Constant or ListValue; got "
                        f"{type(value).__name__}.")


# -- calls, schedules, terms ---------------------------------------------------------------------

@dataclass(frozen=True)
class Argument:
    """One argument of a call: positional (``name is None``, one value) or ``name=v1,v2,...``.

    ``value`` is the Python value: the one value's, or a list when the argument was continued.
    """

    values: tuple[Value, ...]
    name: str | None = None
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "values", tuple(self.values))
        if not self.values:
            raise ValueError("an argument needs at least one value.")
        for value in self.values:
            _check_value(value)
        if self.name is None and len(self.values) != 1:
            raise ValueError(f"a positional argument has one value; got {len(self.values)} "
                             "(only name=... arguments continue over commas).")
        if self.name is not None and not (isinstance(self.name, str) and _NAME.fullmatch(self.name)):
            raise ValueError(f"an argument name matches {NAME_PATTERN}; got {self.name!r}.")

    @property
    def continued(self) -> bool:
        """Whether more than one value was given (``layers=relu1_2,relu2_2``)."""
        return len(self.values) > 1

    @property
    def value(self) -> object:
        """The one value's Python value, or the list of them for a continued argument."""
        if self.continued:
            return [value.value for value in self.values]
        return self.values[0].value


@dataclass(frozen=True)
class Call:
    """A loss name with its arguments: positional ones first, then ``name=`` ones, each once."""

    name: str
    arguments: tuple[Argument, ...] = ()
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "arguments", tuple(self.arguments))
        if not (isinstance(self.name, str) and _NAME.fullmatch(self.name)):
            raise ValueError(f"a loss name matches {NAME_PATTERN}; got {self.name!r}.")
        seen: set[str] = set()
        for argument in self.arguments:
            if not isinstance(argument, Argument):
                raise TypeError(f"Call arguments are Argument nodes; got {type(argument).__name__}.")
            if argument.name is None and seen:
                raise ValueError("positional arguments come before name=value ones (a bare value "
                                 "after name=value continues that argument).")
            if argument.name is not None:
                if argument.name in seen:
                    raise ValueError(f"parameter {argument.name!r} is given twice.")
                seen.add(argument.name)

    @property
    def positional(self) -> tuple[Argument, ...]:
        """The arguments without ``name=``, in order."""
        return tuple(a for a in self.arguments if a.name is None)

    @property
    def keywords(self) -> tuple[Argument, ...]:
        """The ``name=`` arguments, in the order written."""
        return tuple(a for a in self.arguments if a.name is not None)

    def keyword(self, name: str) -> Argument | None:
        """The ``name=`` argument, or ``None`` when the call does not give it."""
        return next((a for a in self.arguments if a.name == name), None)

    def with_argument(self, argument: Argument) -> Call:
        """This call with ``argument`` added at the end (replacing a ``name=`` one of that name)."""
        kept = tuple(a for a in self.arguments if argument.name is None or a.name != argument.name)
        return Call(self.name, (*kept, argument), span=self.span)


@dataclass(frozen=True)
class Schedule:
    """A weight schedule: ``start(S)``, ``ramp(B,E)`` (integer steps) or ``share(F)``."""

    kind: Literal["start", "ramp", "share"]
    arguments: tuple[Number, ...]
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "arguments", tuple(self.arguments))
        if self.kind not in SCHEDULE_ARITY:
            raise ValueError(f"a schedule is one of {', '.join(SCHEDULE_ARITY)}; got {self.kind!r}.")
        if len(self.arguments) != SCHEDULE_ARITY[self.kind] or not all(
                isinstance(a, Number) and not a.negative for a in self.arguments):
            raise ValueError(f"{self.kind} takes {SCHEDULE_ARITY[self.kind]} non-negative "
                             f"number(s); got {self.arguments!r}.")
        if self.kind != "share" and not all(isinstance(a.value, int) for a in self.arguments):
            raise ValueError(f"{self.kind} takes integer steps; got {self.arguments!r}.")

    @property
    def values(self) -> tuple[int | float, ...]:
        """The numbers: ``(step,)``, ``(begin, end)`` (ints) or ``(fraction,)``."""
        return tuple(a.value for a in self.arguments)


@dataclass(frozen=True)
class Term:
    """One weighted loss: ``[weight*]call[*trailing_weight]`` and its schedules."""

    call: Call
    weight: Number | None = None
    trailing_weight: Number | None = None
    schedules: tuple[Schedule, ...] = ()
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "schedules", tuple(self.schedules))
        if not isinstance(self.call, Call):
            raise TypeError(f"Term.call is a Call; got {type(self.call).__name__}.")
        for weight in (self.weight, self.trailing_weight):
            if weight is not None and (not isinstance(weight, Number) or weight.negative):
                raise ValueError(f"a term weight is a non-negative Number; got {weight!r}.")
        kinds = [s.kind for s in self.schedules]
        if sum(kind != "share" for kind in kinds) > 1 or kinds.count("share") > 1:
            raise ValueError(f"a term takes at most one of start/ramp and one share; got {kinds}.")

    @property
    def factor(self) -> float:
        """The term's weight: the product of the weights written before and after the call."""
        factor = 1.0
        for weight in (self.weight, self.trailing_weight):
            if weight is not None:  # float(text): a 400-digit integer is inf, not OverflowError
                factor *= float(weight.text)
        return factor


@dataclass(frozen=True)
class Spec:
    """A whole spec: a sum of one or more terms."""

    terms: tuple[Term, ...]
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "terms", tuple(self.terms))
        if not self.terms or not all(isinstance(t, Term) for t in self.terms):
            raise ValueError("a spec is one or more Term nodes.")

    @property
    def calls(self) -> tuple[Call, ...]:
        """Every term's call, in order."""
        return tuple(term.call for term in self.terms)


Node = Spec | Term | Call | Argument | Schedule | Number | Name | String | Constant | ListValue


def children(node: Node) -> tuple[Node, ...]:
    """A node's child nodes in the order they are written."""
    if isinstance(node, Spec):
        return node.terms
    if isinstance(node, Term):
        return tuple(n for n in (node.weight, node.call, node.trailing_weight) if n is not None) \
            + node.schedules
    if isinstance(node, Call):
        return node.arguments
    if isinstance(node, Argument):
        return node.values
    if isinstance(node, Schedule):
        return node.arguments
    if isinstance(node, ListValue):
        return node.items
    return ()


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents before their children, in written order."""
    yield node
    for child in children(node):
        yield from walk(child)


# -- tokens and parsing --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str  # string, number, name, op, end
    text: str
    position: int

    @property
    def end(self) -> int:
        return self.position + len(self.text)


def _tokenize(spec: str) -> list[_Token]:
    tokens: list[_Token] = []
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
            raise spec_error(spec, position, f"unexpected character {spec[position]!r}{hint}")
        kind = match.lastgroup or "op"
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    tokens.append(_Token("end", "", len(spec)))
    return tokens


class _Parser:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.tokens = _tokenize(spec)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    @property
    def previous_end(self) -> int:
        return self.tokens[self.index - 1].end

    def error(self, position: int, message: str) -> SpecError:
        return spec_error(self.spec, position, message)

    def found(self) -> str:
        token = self.current
        return repr(token.text) if token.kind != "end" else "the end of the spec"

    def take(self, text: str | None = None, kind: str | None = None) -> _Token:
        token = self.current
        if (text is not None and (token.kind != "op" or token.text != text)) or (
                kind is not None and token.kind != kind):
            expected = repr(text) if text is not None else f"a {kind}"
            raise self.error(token.position, f"expected {expected}, found {self.found()}")
        self.index += 1
        return token

    def at(self, text: str) -> bool:
        return self.current.kind == "op" and self.current.text == text

    def span_from(self, start: int) -> Span:
        return Span(start, self.previous_end)

    # spec := term ('+' term)*
    def parse(self) -> Spec:
        if self.current.kind == "end":
            raise self.error(0, "empty loss spec (try 'l1' or 'mse + 0.01*perceptual')")
        start = self.current.position
        terms = [self.term()]
        while self.at("+"):
            self.take("+")
            terms.append(self.term())
        if self.current.kind != "end":
            raise self.error(self.current.position,
                             f"unexpected {self.current.text!r} (terms are joined with '+')")
        return Spec(tuple(terms), span=self.span_from(start))

    def number(self) -> Number:
        token = self.take(kind="number")
        return Number.of(self._number(token), span=Span(token.position, token.end))

    def _number(self, token: _Token) -> int | float:
        if re.fullmatch(r"\d+", token.text):
            try:
                return int(token.text)
            except ValueError:  # Python refuses int() of more than 4300 digits
                raise self.error(token.position, f"integer {token.text[:12]}... has too many "
                                                 "digits; write it as a float (1e400)") from None
        return float(token.text)

    # term := [number '*'] call ['*' number] ('@' schedule)*
    def term(self) -> Term:
        start = self.current.position
        weight = None
        if self.current.kind == "number":
            weight = self.number()
            self.take("*")
        call = self.call()
        trailing = None
        if self.at("*"):
            self.take("*")
            trailing = self.number()
        schedules: list[Schedule] = []
        while self.at("@"):
            self.take("@")
            schedules.append(self.schedule(schedules))
        return Term(call, weight, trailing, tuple(schedules), span=self.span_from(start))

    def schedule(self, previous: list[Schedule]) -> Schedule:
        token = self.take(kind="name")
        kind = token.text
        if kind not in SCHEDULE_ARITY:
            raise self.error(token.position,
                             f"unknown weight schedule {kind!r}; use start(STEP), ramp(BEGIN, END) "
                             "or share(FRACTION)")
        if kind == "share":
            if any(s.kind == "share" for s in previous):
                raise self.error(token.position, "a term takes one share(...)")
            self.take("(")
            fraction = self.number()
            self.take(")")
            return Schedule("share", (fraction,), span=self.span_from(token.position))
        timing = [s for s in previous if s.kind != "share"]
        if timing:
            raise self.error(token.position, "a term takes one of start/ramp; it already has "
                                             f"@{render(timing[0])}")
        self.take("(")
        numbers = [self.number()]
        while self.at(","):
            self.take(",")
            numbers.append(self.number())
        close = self.take(")")
        expected = SCHEDULE_ARITY[kind]
        values = [n.value for n in numbers]
        # isinstance first: math.isfinite of a 400-digit int raises OverflowError
        if len(numbers) != expected or not all(
                isinstance(v, int) or (math.isfinite(v) and v == int(v)) for v in values):
            raise self.error(close.position,
                             f"{kind} takes {expected} integer step(s); e.g. "
                             + ("start(500)" if expected == 1 else "ramp(1000, 2000)"))
        steps = tuple(Number.of(int(v), span=n.span) for v, n in zip(values, numbers, strict=True))
        return Schedule(kind, steps, span=self.span_from(token.position))  # type: ignore[arg-type]

    # call := NAME ['(' [arg (',' arg)*] ')']
    def call(self) -> Call:
        token = self.current
        if token.kind != "name":
            raise self.error(token.position, f"expected a loss name, found {self.found()}")
        self.take()
        if not self.at("("):
            return Call(token.text, span=self.span_from(token.position))
        self.take("(")
        arguments: list[Argument] = []
        names: set[str] = set()
        while not self.at(")"):
            if self.current.kind == "name" and self.tokens[self.index + 1].text == "=":
                key = self.take()
                self.take("=")
                if key.text in names:
                    raise self.error(key.position, f"parameter {key.text!r} is given twice")
                names.add(key.text)
                arguments.append(Argument((self.value(),), key.text,
                                          span=self.span_from(key.position)))
            else:
                value_start = self.current.position
                value = self.value()
                if not names:
                    arguments.append(Argument((value,), span=value.span))
                else:  # 'layers=relu1_2,relu2_2': a bare value extends the last keyword
                    last = arguments[-1]
                    start = last.span.start if last.span is not None else value_start
                    arguments[-1] = Argument((*last.values, value), last.name,
                                             span=self.span_from(start))
            if not self.at(")"):
                self.take(",")
        self.take(")")
        return Call(token.text, tuple(arguments), span=self.span_from(token.position))

    def value(self, depth: int = 0) -> Value:
        start = self.current.position
        signs = 0
        while self.at("-"):  # a negative value, e.g. view=[[1, -1, 0]]; a loop, not recursion
            self.take("-")
            signs += 1
        token = self.current
        value: Value
        if token.kind == "number":
            self.take()
            number = self._number(token)
            if signs % 2:
                number = -number
            return Number.of(number, span=self.span_from(start))
        if token.kind == "string":
            self.take()
            value = String(token.text[1:-1], span=self.span_from(start))
        elif token.kind == "name":
            self.take()
            if token.text.lower() in CONSTANTS:
                value = Constant(CONSTANTS[token.text.lower()], span=self.span_from(start))
            else:
                value = Name(token.text, span=self.span_from(start))
        elif self.at("["):
            if depth >= MAX_NESTING:  # deeper lists would exhaust Python's recursion limit
                raise self.error(token.position,
                                 f"values are nested more than {MAX_NESTING} lists deep; a colour "
                                 "view matrix needs 2 (view=[[0.299, 0.587, 0.114]])")
            self.take("[")
            items = []
            while not self.at("]"):
                items.append(self.value(depth + 1))
                if not self.at("]"):
                    self.take(",")
            self.take("]")
            value = ListValue(tuple(items), span=self.span_from(start))
        else:
            raise self.error(token.position, f"expected a value, found {self.found()}")
        if signs:
            raise self.error(token.position, "expected a number after '-'")
        return value


def parse(spec: str) -> Spec:
    """Parse spec text into a :class:`Spec` tree whose nodes carry their :class:`Span`.

    Raises:
        SpecError: the text is not a spec (the message points at the offending character).
        TypeError: ``spec`` is not a string.

    >>> tree = parse("mse + 0.01*perceptual(layers=relu1_2,relu2_2)@ramp(100,200)")
    >>> tree.terms[1].call.keyword("layers").value
    ['relu1_2', 'relu2_2']
    """
    if not isinstance(spec, str):
        raise TypeError(f"a loss spec must be a string such as 'l1(luma)'; got {type(spec).__name__}.")
    return _Parser(spec).parse()


# -- rendering -----------------------------------------------------------------------------------

ChildText = Callable[[Node], str]


def _layout(node: Node, text: ChildText) -> str:
    """The canonical layout of ``node``, its children written by ``text``."""
    if isinstance(node, Spec):
        return " + ".join(text(term) for term in node.terms)
    if isinstance(node, Term):
        return ((text(node.weight) + "*" if node.weight is not None else "") + text(node.call)
                + ("*" + text(node.trailing_weight) if node.trailing_weight is not None else "")
                + "".join("@" + text(s) for s in node.schedules))
    if isinstance(node, Call):
        if not node.arguments:
            return node.name
        return f"{node.name}({', '.join(text(a) for a in node.arguments)})"
    if isinstance(node, Argument):
        values = ",".join(text(v) for v in node.values)
        return values if node.name is None else f"{node.name}={values}"
    if isinstance(node, Schedule):
        return f"{node.kind}({','.join(text(a) for a in node.arguments)})"
    if isinstance(node, ListValue):
        return "[" + ", ".join(text(item) for item in node.items) + "]"
    if isinstance(node, Number):
        return node.text
    if isinstance(node, Name):
        return node.text
    if isinstance(node, String):
        quote = '"' if "'" in node.text else "'"
        return quote + node.text + quote
    if isinstance(node, Constant):
        return {True: "true", False: "false", None: "none"}[node.value]
    raise TypeError(f"not a spec tree node: {type(node).__name__}.")


def render(node: Node) -> str:
    """The canonical text of a tree or of any node of one (see the module docstring).

    ``parse(render(tree)) == tree`` for every tree, and ``render(parse(text)) == text`` for
    canonical ``text``.

    >>> render(parse("0.5 * l1( luma ) + mse*1e-2 @ start(1e3)"))
    '0.5*l1(luma) + mse*0.01@start(1000)'
    """
    return _layout(node, render)


def _same_layout(original: Node, edited: Node) -> bool:
    """Whether ``edited`` differs from ``original`` only inside children in the same slots."""
    if type(original) is not type(edited):
        return False
    if isinstance(original, Term) and isinstance(edited, Term):
        return ((original.weight is None) == (edited.weight is None)
                and (original.trailing_weight is None) == (edited.trailing_weight is None)
                and len(original.schedules) == len(edited.schedules))
    if isinstance(original, (Call, Argument)) and original.name != edited.name:  # type: ignore[union-attr]
        return False
    if isinstance(original, Schedule) and original.kind != edited.kind:  # type: ignore[union-attr]
        return False
    if isinstance(original, Call) and not original.arguments:
        return False  # 'perceptual' has no parentheses to splice arguments into
    return bool(children(original)) and len(children(original)) == len(children(edited))


def render_edit(source: str, edited: Node) -> str:
    """The text of ``edited``, an edit of ``parse(source)``, keeping the source's own spelling.

    Every node of ``edited`` that the edit left as it was (same span, equal value) is written as
    it was in ``source``; a changed node whose children sit in the same slots keeps the source
    text between them; any other changed node, and every new node (no span), is written in
    canonical form. ``parse(render_edit(source, edited)) == edited`` always holds.

    >>> source = "mse+0.01 * perceptual(layers=relu1_2 ,relu2_2)"
    >>> tree = parse(source)
    >>> call = tree.terms[1].call.with_argument(Argument((Name("random"),), "weights"))
    >>> term = Term(call, tree.terms[1].weight, span=tree.terms[1].span)
    >>> render_edit(source, Spec((tree.terms[0], term), span=tree.span))
    'mse+0.01 * perceptual(layers=relu1_2 ,relu2_2, weights=random)'
    """
    root = parse(source)
    if edited == root and edited.span == root.span:
        return source  # nothing changed: the source as it was, surrounding spaces included
    originals = {(type(node), node.span): node for node in walk(root)}

    def text(node: Node) -> str:
        span = node.span
        original = originals.get((type(node), span)) if span is not None else None
        if original is None or span is None:
            return _layout(node, text)
        if original == node:
            return span.text(source)
        if _same_layout(original, node):
            pieces, position = [], span.start
            for old, new in zip(children(original), children(node), strict=True):
                old_span = old.span or Span(position, position)  # parsed nodes all have spans
                pieces += [source[position:old_span.start], text(new)]
                position = old_span.end
            pieces.append(source[position:span.end])
            return "".join(pieces)
        return _layout(node, text)

    return text(edited)


def term_texts(source: str, tree: Spec | None = None) -> list[str]:
    """Each term's own text in ``source`` (``tree``: ``parse(source)``, if already parsed)."""
    tree = parse(source) if tree is None else tree
    return [term.span.text(source) if term.span is not None else render(term)
            for term in tree.terms]


def map_calls(tree: Spec, edit: Callable[[Call], Call]) -> Spec:
    """``tree`` with every call replaced by ``edit(call)`` (positions kept for :func:`render_edit`).

    >>> render(map_calls(parse("l1 + mse"), lambda call: Call(call.name.upper())))
    'L1 + MSE'
    """
    terms = tuple(
        Term(edit(term.call), term.weight, term.trailing_weight, term.schedules, span=term.span)
        for term in tree.terms
    )
    return Spec(terms, span=tree.span)


def select_terms(tree: Spec, keep: Callable[[Term], bool]) -> Spec | None:
    """``tree`` with only the terms ``keep`` accepts (``None`` when it accepts none)."""
    kept = tuple(term for term in tree.terms if keep(term))
    if not kept:
        return None
    return Spec(kept, span=tree.span)
