"""The spec syntax tree: parsing with positions, canonical rendering, edits, and errors.

Property tests (hypothesis) check the two promises of the module: ``parse(render(tree)) ==
tree`` for every tree (so ``render`` is the identity on canonical text after ``parse``), and
text made of the spec's tokens either parses or raises :class:`SpecError`, never anything else.
"""

from __future__ import annotations

import doctest
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from losslab.core import spec_tree
from losslab.core.spec_tree import (
    MAX_NESTING,
    Argument,
    Call,
    Constant,
    ListValue,
    Name,
    Number,
    Schedule,
    Span,
    Spec,
    SpecError,
    String,
    Term,
    _tokenize,
    children,
    map_calls,
    parse,
    render,
    render_edit,
    select_terms,
    term_texts,
    walk,
)

# Modest example counts keep the file at a few seconds; trees are small but cover every node.
TREES = settings(max_examples=60, deadline=None)
TOKENS = settings(max_examples=300, deadline=None)


# -- parsing -------------------------------------------------------------------------------------

def test_parse_builds_the_tree_as_written() -> None:
    tree = parse("0.5*l1(luma, reduction=sum)*2@start(10) + perceptual(layers=relu1_2,relu2_2)")
    first, second = tree.terms
    assert first == Term(
        Call("l1", (Argument((Name("luma"),)), Argument((Name("sum"),), "reduction"))),
        weight=Number.of(0.5), trailing_weight=Number.of(2),
        schedules=(Schedule("start", (Number.of(10),)),),
    )
    assert first.factor == 1.0
    assert second.call.keyword("layers").values == (Name("relu1_2"), Name("relu2_2"))
    assert second.call.keyword("layers").value == ["relu1_2", "relu2_2"]
    assert second.call.keyword("weights") is None


def test_values_and_their_python_meaning() -> None:
    call = parse("x(a=1, b=1.0, c=-2.5e-3, d=True, e=NONE, f='it is', g=\"it's\", "
                 "h=[[1, -1], []], i=.5, j=1e400)").terms[0].call
    values = {a.name: a.value for a in call.arguments}
    assert values == {"a": 1, "b": 1.0, "c": -0.0025, "d": True, "e": None, "f": "it is",
                      "g": "it's", "h": [[1, -1], []], "i": 0.5, "j": float("inf")}
    assert isinstance(values["a"], int) and isinstance(values["b"], float)
    assert call.keyword("d").values == (Constant(True),)
    assert call.keyword("f").values == (String("it is"),)


def test_every_span_points_at_the_node_text() -> None:
    source = "  mse +0.01 * perceptual( layers = relu1_2 , relu2_2 )@ramp( 1e3 ,2000 )  "
    tree = parse(source)
    texts = {type(node).__name__ + ":" + node.span.text(source) for node in walk(tree)}
    assert "Spec:mse +0.01 * perceptual( layers = relu1_2 , relu2_2 )@ramp( 1e3 ,2000 )" in texts
    assert "Term:0.01 * perceptual( layers = relu1_2 , relu2_2 )@ramp( 1e3 ,2000 )" in texts
    assert "Call:perceptual( layers = relu1_2 , relu2_2 )" in texts
    assert "Argument:layers = relu1_2 , relu2_2" in texts
    assert "Schedule:ramp( 1e3 ,2000 )" in texts
    assert {"Number:1e3", "Number:2000", "Name:relu2_2", "Number:0.01"} <= texts
    assert term_texts(source, tree) == ["mse", "0.01 * perceptual( layers = relu1_2 , relu2_2 )"
                                        "@ramp( 1e3 ,2000 )"]


def test_equality_ignores_positions() -> None:
    assert parse("l1( luma )+mse") == parse("l1(luma) + mse")
    assert parse("l1(luma)").terms[0].span != parse(" l1(luma)").terms[0].span
    assert parse("l1(eps=1)") != parse("l1(eps=1.0)")  # an int and a float are different values
    assert hash(parse("l1 + mse")) == hash(parse("l1+mse"))


@pytest.mark.parametrize(
    ("spec", "message", "position"),
    [
        ("", "empty loss spec", 0),
        ("mse +", "expected a loss name, found the end of the spec", 5),
        ("0.5 l1", "expected '*', found 'l1'", 4),
        ("l1 $ mse", "unexpected character '$'", 3),
        ("l1(view=luma", "expected ',', found the end of the spec", 12),
        ("l1@warmup(5)", "unknown weight schedule 'warmup'", 3),
        ("l1@ramp(5)", "ramp takes 2 integer step(s)", 9),
        ("l1@start(1.5)", "start takes 1 integer step(s)", 12),
        ("l1@start(1)@ramp(1,2)", "a term takes one of start/ramp; it already has @start(1)", 12),
        ("l1@share(0.1)@share(0.2)", "a term takes one share(...)", 14),
        ("l1(view=luma, view=red)", "parameter 'view' is given twice", 14),
        ("l1(view=-luma)", "expected a number after '-'", 9),
        ("l1(view=" + "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1) + ")",
         f"nested more than {MAX_NESTING} lists deep", 8 + MAX_NESTING),
        ("l1 mse", "unexpected 'mse' (terms are joined with '+')", 3),
        ("perceptual(weights=/data/vgg.pth)", "quote file paths: weights='/data/vgg.pth'", 19),
        ("l1(eps=" + "1" * 5000 + ")", "has too many digits", 7),
    ],
)
def test_syntax_errors_point_at_the_problem(spec: str, message: str, position: int) -> None:
    with pytest.raises(SpecError, match=re.escape(message)) as caught:
        parse(spec)
    lines = str(caught.value).splitlines()
    assert f"at position {position} " in lines[0]
    assert lines[-1].index("^") - 2 == position  # the caret line is indented like the spec


def test_deepest_accepted_nesting_parses_and_renders() -> None:
    text = "l1(view=" + "[" * MAX_NESTING + "-1" + "]" * MAX_NESTING + ")"
    assert render(parse(text)) == text


def test_non_string_spec_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a string"):
        parse(3)  # type: ignore[arg-type]


# -- canonical text ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("mse+0.01 * perceptual", "mse + 0.01*perceptual"),
        ("l1 ( luma , reduction = sum )", "l1(luma, reduction=sum)"),
        ("perceptual(layers=relu1_2, relu2_2)", "perceptual(layers=relu1_2,relu2_2)"),
        ("perceptual()", "perceptual"),
        ("mse*1e-2", "mse*0.01"),
        ("1e+2*mse", "100.0*mse"),
        ("007*mse", "7*mse"),
        ("5.*mse", "5.0*mse"),
        ("l1(eps=1e-5, delta=1e16, x=1e400, y=-1e400)", "l1(eps=1e-5, delta=1e16, x=1e999, y=-1e999)"),
        ("l1(view=[ [1,-1,0] ], p=--2, q=-0)", "l1(view=[[1, -1, 0]], p=2, q=0)"),
        ("l1(a=TRUE, b=False, c=None)", "l1(a=true, b=false, c=none)"),
        ('l1(w="x", v="it\'s")', "l1(w='x', v=\"it's\")"),
        ("l1@share(.2)@ramp(1e3, 2000.0)", "l1@share(0.2)@ramp(1000,2000)"),
    ],
)
def test_render_writes_the_canonical_form(text: str, canonical: str) -> None:
    assert render(parse(text)) == canonical
    assert render(parse(canonical)) == canonical
    assert parse(canonical) == parse(text)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Number("1e-2"), "canonical: '0.01'"),
        (lambda: Number("x"), "text of a number"),
        (lambda: Number.of(float("nan")), "NaN"),
        (lambda: Name("true"), "constant, not a name"),
        (lambda: Name("1x"), "a spec name matches"),
        (lambda: String("it's \"x\""), "both"),
        (lambda: Argument((Name("a"), Name("b"))), "positional argument has one value"),
        (lambda: Argument(()), "at least one value"),
        (lambda: Call("l1", (Argument((Name("a"),), "k"), Argument((Name("b"),)))),
         "positional arguments come before"),
        (lambda: Call("l1", (Argument((Name("a"),), "k"), Argument((Name("b"),), "k"))),
         "given twice"),
        (lambda: Schedule("start", (Number.of(1.5),)), "integer steps"),
        (lambda: Schedule("ramp", (Number.of(1),)), "ramp takes 2"),
        (lambda: Schedule("warmup", (Number.of(1),)), "one of start, ramp, share"),
        (lambda: Term(Call("l1"), weight=Number.of(-1)), "non-negative"),
        (lambda: Term(Call("l1"), schedules=(Schedule("start", (Number.of(1),)),
                                             Schedule("ramp", (Number.of(1), Number.of(2))))),
         "at most one of start/ramp"),
        (lambda: Spec(()), "one or more Term"),
        (lambda: ListValue((_nested(MAX_NESTING),)), "nest at most"),
    ],
)
def test_nodes_refuse_what_cannot_be_written(build: Callable[[], object], message: str) -> None:
    assert _nested(MAX_NESTING).depth == MAX_NESTING  # the deepest list that can be built
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def _nested(depth: int) -> ListValue:
    """``[[...[]...]]``, ``depth`` lists deep."""
    value = ListValue(())
    for _ in range(depth - 1):
        value = ListValue((value,))
    return value


# -- edits ---------------------------------------------------------------------------------------

def _add_weights(call: Call) -> Call:
    if call.name != "perceptual" or call.keyword("weights") is not None:
        return call
    return call.with_argument(Argument((Name("random"),), "weights"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("mse+0.01 * perceptual", "mse+0.01 * perceptual(weights=random)"),
        ("perceptual( layers=relu1_2 ,relu2_2 )@ramp( 1 , 2 )",
         "perceptual(layers=relu1_2 ,relu2_2, weights=random)@ramp( 1 , 2 )"),
        ("  l1( luma ) ", "  l1( luma ) "),  # nothing to edit: the text as it was
        ("perceptual(weights=imagenet) + perceptual", "perceptual(weights=imagenet) + "
                                                      "perceptual(weights=random)"),
    ],
)
def test_render_edit_keeps_the_spelling_of_what_did_not_change(source: str, expected: str) -> None:
    edited = map_calls(parse(source), _add_weights)
    assert render_edit(source, edited) == expected
    assert parse(expected) == edited


def test_select_terms_keeps_the_kept_terms_as_written() -> None:
    source = "mse + 0.001 * adversarial( hinge ) + 0.5*l1( luma )@start(3)"
    kept = select_terms(parse(source), lambda term: term.call.name != "adversarial")
    assert kept is not None
    assert render_edit(source, kept) == "mse + 0.5*l1( luma )@start(3)"
    assert select_terms(parse(source), lambda term: False) is None


def test_render_edit_of_a_changed_value_keeps_its_neighbours() -> None:
    source = "l1( view = [ 1 , 2 ] , eps=1e-3 )"
    tree = parse(source)
    (view, eps) = tree.terms[0].call.arguments
    assert isinstance(view.values[0], ListValue)
    items = view.values[0].items
    new_list = ListValue((items[0], Number.of(3)), span=view.values[0].span)
    new_view = Argument((new_list,), "view", span=view.span)
    call = Call("l1", (new_view, eps), span=tree.terms[0].call.span)
    edited = Spec((Term(call, span=tree.terms[0].span),), span=tree.span)
    assert render_edit(source, edited) == "l1( view = [ 1 , 3 ] , eps=1e-3 )"


# -- properties ----------------------------------------------------------------------------------

_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-/~]{0,6}", fullmatch=True).filter(
    lambda text: text.lower() not in ("true", "false", "none"))
_floats = st.floats(allow_nan=False, allow_infinity=True)
_numbers = st.one_of(st.integers(-10**20, 10**20), _floats).map(Number.of)
_non_negative = st.one_of(st.integers(0, 10**9), st.floats(min_value=0, allow_infinity=True)) \
    .filter(lambda v: str(v)[0] != "-").map(Number.of)
# Strings mix the spec's own punctuation (quotes included) into arbitrary characters.
_strings = (st.text(st.sampled_from("'\" +*()[],=@-/.x"), max_size=6) | st.text(max_size=6)).filter(
    lambda text: not ("'" in text and '"' in text))
_leaves = st.one_of(_numbers, _names.map(Name), _strings.map(String),
                    st.sampled_from([True, False, None]).map(Constant))


def _values(depth: int = 0) -> st.SearchStrategy:
    if depth >= 2:  # deeper nesting is tested once above; keep examples small and fast
        return _leaves
    lists = st.lists(st.deferred(lambda: _values(depth + 1)), max_size=3).map(
        lambda items: ListValue(tuple(items)))
    return st.one_of(_leaves, lists)


@st.composite
def _calls(draw: st.DrawFn) -> Call:
    positional = draw(st.lists(_values(), max_size=2))
    keys = draw(st.lists(_names, max_size=2, unique=True))
    arguments = [Argument((value,)) for value in positional]
    arguments += [Argument(tuple(draw(st.lists(_values(), min_size=1, max_size=2))), key)
                  for key in keys]
    return Call(draw(_names), tuple(arguments))


@st.composite
def _terms(draw: st.DrawFn) -> Term:
    schedules = []
    timing = draw(st.sampled_from(["none", "start", "ramp"]))
    steps = st.integers(0, 10**6).map(Number.of)
    if timing == "start":
        schedules.append(Schedule("start", (draw(steps),)))
    elif timing == "ramp":
        schedules.append(Schedule("ramp", (draw(steps), draw(steps))))
    if draw(st.booleans()):
        schedules.insert(draw(st.integers(0, len(schedules))),
                         Schedule("share", (draw(_non_negative),)))
    return Term(draw(_calls()), draw(st.none() | _non_negative), draw(st.none() | _non_negative),
                tuple(schedules))


_trees = st.lists(_terms(), min_size=1, max_size=3).map(lambda terms: Spec(tuple(terms)))


@TREES
@given(_trees)
def test_render_then_parse_gives_the_tree_back(tree: Spec) -> None:
    text = render(tree)
    parsed = parse(text)
    assert parsed == tree
    assert render(parsed) == text  # render∘parse is the identity on canonical text
    for node in walk(parsed):  # and every position points at its node's canonical text
        assert node.span is not None and node.span.text(text) == render(node)


@TREES
@given(_trees, st.data())
def test_edits_render_to_text_that_parses_to_the_edit(tree: Spec, data: st.DataObject) -> None:
    # A non-canonical source: the same tokens with random spaces between them.
    tokens = _tokenize(render(tree))[:-1]
    spaces = data.draw(st.lists(st.sampled_from(["", " ", "  "]), min_size=len(tokens),
                                max_size=len(tokens)))
    source = "".join(token.text + space for token, space in zip(tokens, spaces, strict=True))
    parsed = parse(source)
    assert parsed == tree
    assert render_edit(source, parsed) == source
    name = data.draw(_names)
    edited = map_calls(parsed, lambda call: call if call.keyword(name) else
                       call.with_argument(Argument((Name("x"),), name)))
    assert parse(render_edit(source, edited)) == edited
    keep = data.draw(st.lists(st.booleans(), min_size=len(tree.terms), max_size=len(tree.terms)))
    flags = iter(keep)
    selected = select_terms(parsed, lambda term: next(flags))
    if selected is not None:
        assert parse(render_edit(source, selected)) == selected


_TOKENS = [
    "l1", "mse", "perceptual", "luma", "view", "eps", "start", "ramp", "share", "true", "none",
    "relu1_2", "a.b", "x-y", "0", "1", "0.5", ".5", "1e-3", "1e400", "007", "2.", "'q s'",
    '"it\'s"', "+", "*", "(", ")", "[", "]", ",", "=", "@", "-", " ", "$", "/",
]


@TOKENS
@given(st.lists(st.sampled_from(_TOKENS), max_size=14).map("".join))
def test_token_soup_parses_or_raises_only_spec_error(text: str) -> None:
    try:
        tree = parse(text)
    except SpecError as error:
        lines = str(error).splitlines()
        position = int(re.search(r"at position (\d+) in loss spec:", lines[0]).group(1))
        assert 0 <= position <= len(text)
        assert lines[-2] == "  " + text and lines[-1] == " " * (2 + position) + "^"
        return
    assert parse(render(tree)) == tree


def test_children_lists_every_node_in_written_order() -> None:
    tree = parse("2*l1(luma, k=[1, x])*3@start(1)@share(0.5)")
    spans = [node.span.start for node in walk(tree)]
    assert spans == sorted(spans)
    term = tree.terms[0]
    assert [type(n).__name__ for n in children(term)] == ["Number", "Call", "Number", "Schedule",
                                                           "Schedule"]
    assert Span(0, 2).text("l1") == "l1"


def test_docstring_examples_hold() -> None:
    result = doctest.testmod(spec_tree)
    assert result.attempted >= 5 and result.failed == 0
