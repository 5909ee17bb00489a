"""The spec language: what it builds, and every error with its position and suggestion."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import losslab
from losslab.core.spec_tree import Argument, Call, Name, Number, Schedule, Spec, Term
from losslab.core.spec_tree import parse as parse_tree
from losslab.losses import L1Loss, MSELoss, SpecError, WeightedSum


def test_single_term_returns_the_module() -> None:
    built = losslab.loss("l1(luma)")
    assert isinstance(built, L1Loss) and built.view.name == "luma"
    assert built.term_name == "l1(luma)"


def test_keyword_view_and_aliases() -> None:
    assert losslab.loss("mae(view=red)").view.name == "red"
    assert isinstance(losslab.loss("l2"), MSELoss)


def test_weights_on_either_side_and_exponent_numbers() -> None:
    built = losslab.loss("0.84*l1 + mse*1e-2 + charbonnier(eps=1e-3)")
    assert isinstance(built, WeightedSum)
    assert built.weights == pytest.approx([0.84, 0.01, 1.0])
    assert built.terms[2].eps == pytest.approx(1e-3)


def test_input_range_reaches_every_term() -> None:
    built = losslab.loss("l1 + mse(luma)", input_range=(-1, 1))
    assert all(term.input_range == (-1.0, 1.0) for term in built.terms)


def test_bracketed_matrix_view() -> None:
    built = losslab.loss("l1(view=[[1, -1, 0]])")
    p, t = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    expected = ((p[:, 0] - p[:, 1]) - (t[:, 0] - t[:, 1])).abs().mean()
    torch.testing.assert_close(built(p, t), expected)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty loss spec"),
        ("l1x", "unknown loss 'l1x'. Did you mean 'l1'"),
        ("mse + l1(lumma)", "Did you mean 'luma'"),
        ("l1(view=luma, reductio=sum)", "no parameter 'reductio'. Did you mean 'reduction'"),
        ("mse +", "expected a loss name, found the end of the spec at position 5"),
        ("l1(luma, red)", "takes 1 positional value"),
        ("0.5 l1", "expected '*', found 'l1'"),
        ("l1 $ mse", "unexpected character '$' at position 3"),
        ("l1(view=luma", "expected ',', found the end of the spec"),
        ("l1@warmup(5)", "unknown weight schedule 'warmup'"),
        ("l1@ramp(5)", "ramp takes 2 integer step"),
        ("l1(view=luma, view=red)", "given twice"),
        ("charbonnier(eps=1,2)", "takes one value"),
        ("huber(delta=-1)", "delta must be a finite number > 0"),
    ],
)
def test_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        losslab.loss(spec)


def test_error_shows_a_pointer_under_the_position() -> None:
    with pytest.raises(SpecError) as caught:
        losslab.loss("mse + l1x")
    lines = str(caught.value).splitlines()
    assert lines[-2].strip() == "mse + l1x"
    assert lines[-1].index("^") == lines[-2].index("l1x")


def test_non_string_spec() -> None:
    with pytest.raises(TypeError, match="must be a string"):
        losslab.loss(3)  # type: ignore[arg-type]


def test_quoted_values_and_signs() -> None:
    (term,) = parse_tree("perceptual(weights='/tmp/my vgg.pth', layers=relu1_1)").terms
    assert term.call.keyword("weights").value == "/tmp/my vgg.pth"
    assert losslab.loss("l1 +0.5*mse").weights == [1.0, 0.5]  # '+0.5' is an operator, not a sign


def test_bare_none_reaches_a_string_parameter_as_the_string_none() -> None:
    # 'none' is both the spec's null literal and a valid reduction; a parameter that cannot take
    # None (reduction) gets the string, so reduction=none needs no quotes.
    built = losslab.loss("l1(reduction=none)")
    p, t = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(built(p, t), (p - t).abs())
    # A parameter that accepts None still gets None.
    assert losslab.loss("perceptual(layer_weights=none, weights=random)").layer_weights == [0.2] * 5


def test_unquoted_absolute_path_suggests_quotes() -> None:
    with pytest.raises(SpecError, match=r"unexpected character '/' .*quote") as caught:
        losslab.loss("perceptual(weights=/data/vgg19.pth)")
    assert "weights='/data/vgg19.pth'" in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "pointed_at"),
    [
        ("mse + huber(delta=-1)", "-1"),
        ("l1 + l1(lumaa)", "lumaa"),
        ("perceptual(layers=relu1_2,relu9_9, weights=random)", "relu1_2"),
        ("adversarial(objective=hinge, disc=pathc)", "pathc"),
    ],
)
def test_invalid_parameter_value_points_at_that_value(spec: str, pointed_at: str) -> None:
    with pytest.raises(SpecError) as caught:
        losslab.loss(spec)
    lines = str(caught.value).splitlines()
    assert lines[-1].index("^") == lines[-2].index(pointed_at), str(caught.value)


# Cheap-to-build losses and their parameter names: random specs from these tokens exercise the
# builder (registry lookup, parameter matching, constructor checks), not just the parser.
_BUILD_TOKENS = [
    "l1", "mse", "huber", "charbonnier", "gdl", "ssim", "frequency", "view", "luma", "red",
    "reduction", "sum", "mean", "none", "true", "eps", "delta", "lowpass", "highpass", "alpha",
    "input_range", "check_values", "start", "ramp", "share", "0", "1", "2", "0.5", "1e-3",
    "1e400", "1" * 400, "(", ")", "[", "]", ",", "=", "-", "+", "*", "@", "'luma'", " ",
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_BUILD_TOKENS), max_size=12).map("".join))
def test_random_specs_build_or_raise_only_spec_error(text: str) -> None:
    try:
        built = losslab.loss(text)
    except SpecError as error:
        assert "loss spec" in str(error)
        return
    assert isinstance(built, torch.nn.Module)


def test_a_tree_builds_like_its_canonical_text() -> None:
    tree = Spec((Term(Call("l1", (Argument((Name("luma"),)),)), weight=Number.of(0.5),
                      schedules=(Schedule("start", (Number.of(3),)),)),
                 Term(Call("mse"))))
    built = losslab.loss(tree)
    assert isinstance(built, WeightedSum)
    assert built.weights == [0.5, 1.0] and built.term_names == ["l1(luma)", "mse"]
    assert built.schedules[0].kind == "start" and built.schedules[0].begin == 3
    with pytest.raises(SpecError, match=r"unknown loss 'l1x'.*\n  0.5\*l1x\n      \^"):
        losslab.loss(Spec((Term(Call("l1x"), weight=Number.of(0.5)),)))
