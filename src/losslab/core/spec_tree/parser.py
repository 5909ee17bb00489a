"""Spec text to tree: the tokenizer and the recursive-descent parser, and the spec error.

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

Errors are :class:`SpecError` (a ``ValueError``) with the position and a caret under it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from losslab.core.spec_tree.nodes import (
    CONSTANTS,
    MAX_NESTING,
    NAME_PATTERN,
    NUMBER_PATTERN,
    SCHEDULE_ARITY,
    Argument,
    Call,
    Constant,
    ListValue,
    Name,
    Number,
    Schedule,
    Span,
    Spec,
    String,
    Term,
    Value,
    render,
)

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
