"""Spec text helpers of the runner: terms, perceptual weights, probe parts, run names."""

from __future__ import annotations

import pytest

from losslab.experiments.specs import (
    called_losses,
    probe_spec,
    safe_run_name,
    split_terms,
    term_call_name,
    unique_run_names,
    with_perceptual_weights,
)


def test_split_terms_respects_parentheses_and_exponents() -> None:
    assert split_terms("mse + 1e+2*perceptual(layers=relu1_2,relu2_2) + l1(luma)@start(5)") == [
        "mse", "1e+2*perceptual(layers=relu1_2,relu2_2)", "l1(luma)@start(5)"]
    assert term_call_name("0.006 * perceptual(layers=relu5_4)") == "perceptual"
    assert term_call_name("l1(red)*2") == "l1"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mse", "mse"),
        ("mse + 0.01*perceptual", "mse + 0.01*perceptual(weights=random)"),
        ("perceptual(layers=relu2_2)", "perceptual(layers=relu2_2, weights=random)"),
        ("perceptual()", "perceptual(weights=random)"),
        ("perceptual(weights=imagenet)", "perceptual(weights=imagenet)"),  # explicit stays
        ("l1 + 0.1*perceptual(layers=relu1_2,relu2_2)@ramp(1,2)",
         "l1 + 0.1*perceptual(layers=relu1_2,relu2_2, weights=random)@ramp(1,2)"),
    ],
)
def test_with_perceptual_weights(spec: str, expected: str) -> None:
    assert with_perceptual_weights(spec, "random") == expected
    assert with_perceptual_weights(spec, None) == spec


def test_with_perceptual_weights_edits_the_tree_not_the_text() -> None:
    # Only the edited call is re-written; the rest keeps the user's spelling.
    assert with_perceptual_weights("mse+0.01 * perceptual( layers=relu2_2 )@start(5)", "random") \
        == "mse+0.01 * perceptual(layers=relu2_2, weights=random)@start(5)"
    # A name that merely contains 'perceptual', or sits in a quoted value, is not a call.
    assert with_perceptual_weights("l1(view='perceptual') + perceptual_x", "random") == \
        "l1(view='perceptual') + perceptual_x"
    # Two perceptual terms, one with weights: only the other one is given them.
    assert with_perceptual_weights("perceptual(weights=imagenet) + perceptual", "random") == \
        "perceptual(weights=imagenet) + perceptual(weights=random)"
    # A spec that does not parse is left for the builder to report with its position.
    assert with_perceptual_weights("perceptual $", "random") == "perceptual $"


def test_called_losses_resolves_aliases() -> None:
    assert called_losses("0.84*msssim + 0.16*l1(luma)@start(2) + mae + nosuch") == [
        "ms_ssim", "l1", "l1", "nosuch"]


def test_probe_spec_keeps_the_spelling_of_kept_terms() -> None:
    assert probe_spec("mse+0.001 * adversarial( hinge )+ l1( luma )@start(3)")[0] == \
        "mse + l1( luma )@start(3)"
    assert split_terms("perceptual(weights='/data/a+b.pth') +l1") == [
        "perceptual(weights='/data/a+b.pth')", "l1"]


def test_probe_spec_leaves_out_adversarial_terms() -> None:
    assert probe_spec("mse + 0.001*adversarial(objective=vanilla)")[0] == "mse"
    assert "adversarial" in probe_spec("mse + 0.001*adversarial")[1]
    spec, note = probe_spec("adversarial")
    assert spec is None and note.startswith("not probed")
    assert probe_spec("l1(luma)") == ("l1(luma)", "")


def test_run_names_are_filesystem_safe_and_unique() -> None:
    assert safe_run_name("l1(luma)") == "l1-luma"
    assert safe_run_name("mse + 0.006*perceptual(layers=relu5_4)") == \
        "mse+0.006xperceptual-layers=relu5_4"
    assert safe_run_name("multi-hypothesis mse (K=4)") == "multi-hypothesis-mse-K=4"
    assert safe_run_name("a/b:c") == "a_b_c"
    assert unique_run_names(["l1(luma)", "L1-luma", "x"]) == ["l1-luma", "L1-luma-2", "x"]
