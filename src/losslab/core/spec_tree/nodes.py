"""The nodes of a loss spec tree (values, arguments, calls, schedules, terms, the spec) and
their canonical text (:func:`render`).

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
Every node checks on construction that it renders to text that parses back to itself (against
the token patterns and limits defined here), so any tree that can be built can be rendered.
:func:`children` and :func:`walk` visit a tree in written order.

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


# -- canonical text -----------------------------------------------------------------------------

ChildText = Callable[[Node], str]


def layout(node: Node, text: ChildText) -> str:
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
    return layout(node, render)
