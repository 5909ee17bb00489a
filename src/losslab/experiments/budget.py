"""Command-line budget overrides: ``--steps``, the budget scale, perceptual weights, launcher.

:func:`resolve_budget` turns an experiment into the one that is run (and written to
``DIR/experiment.yaml``); :func:`resolve_launcher` puts the command line's ``--jobs`` /
launcher choices over the experiment's ``launcher:`` section.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from losslab.experiments.schema import (
    Experiment,
    ExperimentError,
    Launcher,
    check_perceptual_weights,
)
from losslab.experiments.specs import with_perceptual_weights
from losslab.train.config_errors import validated
from losslab.weights import get_weights_info


def resolve_budget(experiment: Experiment, *, steps: int | None = None,
                   budget_scale: float = 1.0, perceptual_weights: str | None = None) -> Experiment:
    """Apply command-line overrides and return the resolved experiment.

    Args:
        steps: replaces every run's step budget (entry overrides included).
        budget_scale: multiplies every run's steps (rounded, at least 1), e.g. 10 on a GPU;
            ignored when ``steps`` is given.
        perceptual_weights: ``imagenet``, ``random``, ``auto`` or the path of a VGG19 state dict
            file (relative to the working directory) for every ``perceptual`` term that does not
            name its weights; overrides the experiment's ``perceptual_weights``. ``auto``
            resolves here, once: ``imagenet`` when VGG19's ImageNet file is in the local cache
            (``losslab weights``), else ``random``; the resolved value (a path made absolute) is
            what ``experiment.yaml``, ``comparison.json`` and the report show.
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive integer; got {steps!r}.")
    if not (isinstance(budget_scale, (int, float)) and math.isfinite(budget_scale)
            and budget_scale > 0):
        raise ValueError(f"budget_scale must be a positive number (e.g. 10 on a GPU); got "
                         f"{budget_scale!r}.")
    if perceptual_weights is not None:
        try:
            perceptual_weights = check_perceptual_weights(perceptual_weights)
        except ValueError as error:
            raise ValueError(f"perceptual_weights {error}") from None

    def scaled(value: int) -> int:
        if steps is not None:
            return steps
        return max(1, round(value * budget_scale))

    weights = perceptual_weights or experiment.perceptual_weights
    if weights == "auto":
        weights = auto_perceptual_weights()
    entries = list(
        entry.model_copy(update={
            "loss": with_perceptual_weights(entry.loss, weights),  # a path is quoted there
            "steps": None if entry.steps is None else scaled(entry.steps),
        })
        for entry in experiment.entries
    )
    budget = experiment.budget.model_copy(update={"steps": scaled(experiment.budget.steps)})
    return experiment.model_copy(update={"entries": entries, "budget": budget,
                                         "perceptual_weights": weights})


def auto_perceptual_weights() -> str:
    """``"imagenet"`` when VGG19's ImageNet weights are in the local cache, else ``"random"``.

    Never downloads: ``auto`` exists so an experiment runs offline unchanged.
    """
    return "imagenet" if get_weights_info("vgg19-imagenet").present else "random"



def resolve_launcher(experiment: Experiment, launcher: Launcher | Mapping[str, Any] | None,
                     jobs: int | None) -> Launcher:
    """The experiment's ``launcher:`` section with the command line's choices over it."""
    values = experiment.launcher.model_dump()
    if isinstance(launcher, Launcher):
        values = launcher.model_dump()
    elif launcher is not None:
        values.update({key: value for key, value in launcher.items() if value is not None})
    if jobs is not None:
        values["jobs"] = jobs
    return validated(Launcher, values, what="launcher", origin="launcher options",
                     error=ExperimentError)


