"""losses.adversarial.feature_matching: linking to an adversarial term's discriminator, the
standalone term's own adversary, and the pix2pixHD distance, on the losses layer (the
discriminator is attached by hand; with the trainer's attach: tests/train/test_adversarial.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import losslab
from losslab.losses import AdversarialLoss, FeatureMatchingLoss, adversarial_terms
from losslab.losses.adversarial import feature_matching_loss, link_feature_matching
from losslab.models import build_discriminator


def test_a_feature_matching_term_links_to_the_adversarial_term_of_its_sum() -> None:
    criterion = losslab.loss("l1 + adversarial(width=4, depth=2) + feature_matching")
    matching = criterion.terms[2]  # type: ignore[index]
    assert isinstance(matching, FeatureMatchingLoss) and matching.adversary is not None
    assert link_feature_matching(criterion) == 1
    (term,) = adversarial_terms(criterion)  # idempotent; the own adversary is gone
    assert matching.partner is term and matching.adversary is None
    assert matching.min_size is None  # no discriminator attached yet
    term.attach_discriminator(build_discriminator("patch", width=4, depth=2))
    assert matching.min_size == term.min_size == 12


def test_a_standalone_term_keeps_its_own_adversary() -> None:
    criterion = losslab.loss("l1 + feature_matching(width=4, depth=2, objective=lsgan)")
    (own,) = adversarial_terms(criterion)
    matching = criterion.terms[1]  # type: ignore[index]
    assert own is matching.adversary and own.objective == "lsgan" and matching.partner is own
    with pytest.raises(TypeError, match=r"links to an AdversarialLoss; got L1Loss"):
        matching.link(losslab.loss("l1"))  # type: ignore[arg-type]


def test_the_distance_is_the_mean_l1_over_layers_against_detached_real_features() -> None:
    fake = [torch.rand(2, 4, 8, 8, requires_grad=True), torch.rand(2, 8, 4, 4, requires_grad=True)]
    real = [torch.rand(2, 4, 8, 8, requires_grad=True), torch.rand(2, 8, 4, 4, requires_grad=True)]
    value = feature_matching_loss(fake, real)
    expected = (F.l1_loss(fake[0], real[0]) + F.l1_loss(fake[1], real[1])) / 2
    assert float(value.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    value.backward()
    assert all(f.grad is not None for f in fake) and all(r.grad is None for r in real)
    with pytest.raises(ValueError, match=r"non-empty and of equal length; got 2 and 1"):
        feature_matching_loss(fake, real[:1])


def test_the_term_with_a_hand_attached_discriminator_matches_its_features() -> None:
    criterion = losslab.loss("adversarial(width=4, depth=2) + feature_matching")
    (term,) = adversarial_terms(criterion)
    assert isinstance(term, AdversarialLoss)
    term.attach_discriminator(build_discriminator("patch", width=4, depth=2))
    matching = criterion.terms[1]  # type: ignore[index]
    prediction, target = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    fake = term.discriminator.features(2 * prediction - 1)
    real = term.discriminator.features(2 * target - 1)
    assert float(matching(prediction, target).detach()) == pytest.approx(
        float(feature_matching_loss(fake, real).detach()), rel=1e-6)
