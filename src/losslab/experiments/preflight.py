"""Preflight: build every loss and training config before any run trains, so a typo fails in
seconds, not after the first runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from losslab.experiments.planning import PlannedRun, train_config
from losslab.experiments.schema import ExperimentError
from losslab.losses import loss as build_loss
from losslab.synthesis import minimum_size
from losslab.weights import WeightsUnavailableError


@dataclass(frozen=True)
class LossFacts:
    """What the probe and the metamers need to know of a built loss, kept instead of the
    module (feature networks are not held through the training).

    Attributes:
        min_size: the smallest image side (pixels) every term accepts.
        sample_based: whether a term scores ``(N, m, C, H, W)`` draws (energy_score, crps,
            kernel_score): such a loss has no single image to probe or synthesise.
    """

    min_size: int
    sample_based: bool


def loss_facts(module: Any) -> LossFacts:
    """The :class:`LossFacts` of a built loss (a lone term or a weighted sum)."""
    terms = [part.term for part in module.weighted_terms()] \
        if hasattr(module, "weighted_terms") else [module]
    return LossFacts(minimum_size(module)[0],
                     any(getattr(term, "sample_based", False) for term in terms))


def _weights_descriptions(module: Any) -> list[str]:
    found = []
    for child in module.modules():
        description = getattr(child, "weights_description", None)
        if isinstance(description, str) and description not in found:
            found.append(description)
    return found


def preflight(plans: list[PlannedRun],
              facts: dict[str, LossFacts] | None = None) -> dict[str, list[str]]:
    """Build every loss and config before any training, so a typo fails in seconds, not after
    the first runs; returns each run's feature-network weight descriptions.

    Each plan's ``TrainConfig`` is validated here, once (:func:`train_config` keeps it); each
    distinct loss spec is built once (and let go: feature networks are not kept through the
    training); its :class:`LossFacts` go into ``facts`` (``{spec: LossFacts}``) when a dict is
    given, which the probe and the metamers read instead of building the loss again.
    """
    descriptions: dict[str, list[str]] = {}
    found: dict[str, list[str]] = {}
    for plan in plans:
        train_config(plan)
        if plan.loss in found:  # another seed of the same entry (or the same spec): built once
            descriptions[plan.run_name] = found[plan.loss]
            continue
        try:
            module = build_loss(plan.loss)
        except Exception as error:  # weights missing, typo: stop before training anything
            hint = ""
            if isinstance(error, WeightsUnavailableError) and "perceptual" in plan.loss:
                hint = (" For an offline smoke run of the whole comparison, pass "
                        "--perceptual-weights random (run_comparison(..., "
                        "perceptual_weights='random')); the report flags it.")
            raise ExperimentError(
                f"entry {plan.label!r}: cannot build its loss: {error}{hint}"
            ) from error
        if facts is not None:
            facts[plan.loss] = loss_facts(module)
        descriptions[plan.run_name] = found[plan.loss] = _weights_descriptions(module)
    return descriptions


