"""Preflight: build every loss and training config before any run trains, so a typo fails in
seconds, not after the first runs."""

from __future__ import annotations

from typing import Any

from losslab.experiments.planning import PlannedRun, train_config
from losslab.experiments.schema import ExperimentError
from losslab.losses import loss as build_loss
from losslab.synthesis import minimum_size
from losslab.weights import WeightsUnavailableError


def _weights_descriptions(module: Any) -> list[str]:
    found = []
    for child in module.modules():
        description = getattr(child, "weights_description", None)
        if isinstance(description, str) and description not in found:
            found.append(description)
    return found


def preflight(plans: list[PlannedRun],
              min_sizes: dict[str, int] | None = None) -> dict[str, list[str]]:
    """Build every loss and config before any training, so a typo fails in seconds, not after
    the first runs; returns each run's feature-network weight descriptions.

    Each plan's ``TrainConfig`` is validated here, once (:func:`train_config` keeps it); each
    distinct loss spec is built once (and let go: feature networks are not kept through the
    training); its smallest accepted image side goes into ``min_sizes`` (``{spec: pixels}``)
    when a dict is given, which the metamers read instead of building the loss again.
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
        if min_sizes is not None:
            min_sizes[plan.loss] = minimum_size(module)[0]
        descriptions[plan.run_name] = found[plan.loss] = _weights_descriptions(module)
    return descriptions


