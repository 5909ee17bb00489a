"""Metrics of a stochastic model's samples: many outputs per input, scored as a set.

A stochastic model (:mod:`losslab.models.stochastic`) draws ``S`` outputs per input. Every
function here takes them as ``samples`` of shape ``(N, S, C, H, W)`` (``N`` inputs, ``S`` samples
of each, ``C = 3``), in ``[0, 1]``; samples are clipped to ``[0, 1]`` before they are compared, as
every other metric clips outputs. The measures:

- **best of S** (:func:`best_of_samples`, :func:`psnr_best_of_samples`): per input the sample
  with the smallest MSE to the target (the oracle pick, as ``best of K`` for multi-hypothesis
  models), then the pooled PSNR of those picks. For data that knows its plausible answers, the
  sample nearest to *any* answer is :func:`losslab.metrics.plausibility.psnr_plausible` on the
  5-D samples (the same function, no second copy).
- **mean of the samples** (:func:`sample_mean`): the per-input average of the clipped samples,
  ``(N, C, H, W)``. A sampler that draws from the right distribution has the distribution's mean
  as its expected sample mean, which is exactly what MSE training predicts; with ``S`` samples
  it carries sampling noise of ``1/sqrt(S)`` of the samples' own spread.
- **diversity** (:func:`sample_diversity`): the RMSE between two samples of one input (over
  channels and pixels), averaged over the ``S (S - 1) / 2`` pairs, then over inputs. 0 for a
  deterministic model; not "better" when larger (noise is diverse too).
- **spread-skill ratio** (:func:`spread_skill`): ensemble spread against the RMSE of the
  ensemble mean, as in Fortin et al. (2014, "Why should ensemble spread match the RMSE of the
  ensemble mean?", J. Hydrometeorology 15, 1708-1713)::

      spread = sqrt(mean over inputs, channels, pixels of the unbiased sample variance)
      skill  = sqrt(mean over inputs, channels, pixels of (sample mean - target)^2)
      ratio  = sqrt((S + 1) / S) * spread / skill

  The factor ``sqrt((S + 1) / S)`` is their finite-ensemble correction: when the target is one
  more draw from the same distribution as the ``S`` samples, ``E[skill^2] = (S + 1) / S *
  E[spread^2]``, so the ratio is 1 for a calibrated sampler, below 1 for an over-confident one
  (0 for a deterministic model) and above 1 for one that scatters too much.
- **mode coverage** (:func:`reached_answers`, :func:`mode_coverage`): how many of an input's
  plausible answers its samples *reach*. A sample reaches answer ``p`` when ``p`` is its
  nearest answer (smallest MSE, as ``nearest_plausible``) **and** its RMSE to ``p`` is below
  ``closeness`` (default :data:`CLOSENESS` = 0.4) times the RMSE between ``p`` and the nearest
  *other* answer. Being nearest is not enough: the average of four futures is nearest to one of
  them while it shows all four. The rule is relative, so it needs no threshold in dB that would
  depend on the size of the shape. With 4 equally bright, non-overlapping futures the four-way
  average lies at 0.61 of that distance from each, a two-way average at 0.50 and a copy of the
  past at 1.0: none reaches; a committed shape (nothing elsewhere) reaches from 44 % of the answer's
  intensity on. Below 0.5, a sample can reach at most one answer (the balls are disjoint).
  ``mode_coverage`` is the mean over inputs of the number of distinct answers reached (answers
  that are identical images count once); ``plausible_hit_rate`` the fraction of all samples that
  reach some answer.

Example:
    >>> import torch
    >>> answers = torch.zeros(1, 2, 3, 4, 4)
    >>> answers[0, 0, :, :, :2] = 1.0                 # shape on the left ...
    >>> answers[0, 1, :, :, 2:] = 1.0                 # ... or on the right
    >>> mode_coverage(answers, answers)               # samples = the two answers
    2.0
    >>> mode_coverage(answers.mean(dim=1, keepdim=True).repeat(1, 2, 1, 1, 1), answers)
    0.0
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from losslab.losses.multi_hypothesis import best_hypothesis, select_hypothesis
from losslab.metrics._common import check_image_pair
from losslab.metrics.fidelity import pooled_psnr

#: A sample reaches a plausible answer when its RMSE to it is below this fraction of the RMSE
#: between that answer and its nearest other answer (module docstring).
CLOSENESS = 0.4


def check_samples(samples: Tensor, targets: Tensor | None = None, *, at_least: int = 1) -> None:
    """``samples`` is ``(N, S, 3, H, W)`` with ``S >= at_least`` and matches ``targets``.

    Raises:
        ValueError: another shape, fewer samples than needed, or samples that do not match
            ``targets`` ``(N, 3, H, W)`` (the message names both shapes).
    """
    if not isinstance(samples, Tensor) or samples.dim() != 5:
        shape = tuple(samples.shape) if isinstance(samples, Tensor) else type(samples).__name__
        raise ValueError(f"samples must be (N, S, C, H, W): S samples per input; got {shape}. "
                         "Draw them with losslab.models.stochastic.draw_samples.")
    if samples.shape[1] < at_least:
        raise ValueError(f"this measure needs at least {at_least} samples per input; got "
                         f"S = {samples.shape[1]}. Draw more (losslab evaluate --samples 8).")
    if targets is not None:
        if targets.dim() != 4 or samples.shape[0] != targets.shape[0] \
                or samples.shape[2:] != targets.shape[1:]:
            raise ValueError(f"samples (N, S, C, H, W) = {tuple(samples.shape)} do not match "
                             f"targets (N, C, H, W) = {tuple(targets.shape)}; N, C, H and W must "
                             "be equal.")
        check_image_pair(samples[:, 0], targets)


def _clipped(samples: Tensor) -> Tensor:
    return samples.detach().double().clamp(0.0, 1.0)


def best_of_samples(samples: Tensor, targets: Tensor) -> Tensor:
    """Per input, the sample with the smallest MSE to the target (the oracle pick).

    The choice of ``losses.multi_hypothesis.best_hypothesis`` (one implementation for "best of
    K hypotheses" and "best of S samples"), made on clipped samples.

    Shape:
        - samples: ``(N, S, 3, H, W)``; targets: ``(N, 3, H, W)``; both in ``[0, 1]``.
        - returns ``(N, 3, H, W)``, clipped to ``[0, 1]``.
    """
    check_samples(samples, targets)
    clipped = samples.detach().float().clamp(0.0, 1.0)
    return select_hypothesis(clipped, best_hypothesis(clipped, targets.detach().float()))


def psnr_best_of_samples(samples: Tensor, targets: Tensor) -> float:
    """Pooled PSNR (dB) of :func:`best_of_samples` against the targets; ``inf`` when every
    input has an exact sample."""
    return pooled_psnr(best_of_samples(samples, targets), targets.detach().float())


def sample_mean(samples: Tensor) -> Tensor:
    """The mean of each input's clipped samples: ``(N, S, C, H, W) -> (N, C, H, W)`` float32."""
    check_samples(samples)
    return _clipped(samples).mean(dim=1).float()


def sample_diversity(samples: Tensor) -> float:
    """Mean pairwise RMSE between samples of one input, averaged over inputs (``[0, 1]`` units).

    ``RMSE(a, b) = sqrt(mean over channels and pixels of (a - b)^2)`` on clipped samples; the
    mean is over the ``S (S - 1) / 2`` unordered pairs ``j < k`` of each input, then over the
    ``N`` inputs. Needs ``S >= 2``.

    Shape: samples ``(N, S, C, H, W)``.
    """
    check_samples(samples, at_least=2)
    flat = _clipped(samples).flatten(2)  # (N, S, D)
    squared = _distance(flat, flat).square() / flat.shape[-1]  # (N, S, S) pairwise MSE
    count = samples.shape[1]
    upper = torch.triu_indices(count, count, offset=1)
    rmse = squared[:, upper[0], upper[1]].clamp_min(0.0).sqrt()  # (N, pairs)
    return float(rmse.mean())


def spread_skill(samples: Tensor, targets: Tensor) -> dict[str, float]:
    """Ensemble spread, the RMSE of the ensemble mean, and their corrected ratio.

    Definitions in the module docstring (Fortin et al. 2014, with the ``sqrt((S + 1) / S)``
    correction for ``S`` samples). Needs ``S >= 2``.

    Shape: samples ``(N, S, C, H, W)``, targets ``(N, C, H, W)``, in ``[0, 1]``.

    Returns:
        ``{"spread", "skill", "ratio"}``: spread and skill in ``[0, 1]`` units; ``ratio`` is
        ``inf`` when the mean is exact but the samples spread, ``nan`` when both are 0.
    """
    check_samples(samples, targets, at_least=2)
    clipped = _clipped(samples)
    count = samples.shape[1]
    spread = float(clipped.var(dim=1, unbiased=True).mean().sqrt())
    skill = float((clipped.mean(dim=1) - targets.detach().double()).square().mean().sqrt())
    corrected = math.sqrt((count + 1) / count) * spread
    ratio = corrected / skill if skill > 0 else math.inf if corrected > 0 else math.nan
    return {"spread": spread, "skill": skill, "ratio": ratio}


def _distance(first: Tensor, second: Tensor) -> Tensor:
    """Euclidean distances between rows, ``(N, A, D), (N, B, D) -> (N, A, B)``, computed
    directly (not by the matrix-product shortcut), so identical images are exactly 0 apart."""
    return torch.cdist(first, second, compute_mode="donot_use_mm_for_euclid_dist")


def _answer_distances(plausible: Tensor) -> Tensor:
    """MSE between every pair of one input's answers: ``(N, P, C, H, W) -> (N, P, P)``."""
    flat = plausible.detach().double().flatten(2)
    return (_distance(flat, flat).square() / flat.shape[-1]).clamp_min(0.0)


def reached_answers(samples: Tensor, plausible: Tensor, closeness: float = CLOSENESS) -> Tensor:
    """Which plausible answer each sample reaches, or ``-1`` (the rule of the module docstring).

    Args:
        samples: ``(N, S, 3, H, W)`` in ``[0, 1]`` (clipped before comparing).
        plausible: ``(N, P, 3, H, W)`` in ``[0, 1]``, ``P >= 2`` answers per input of which at
            least two differ.
        closeness: the fraction (``0 < closeness <= 0.5``) of the RMSE between an answer and its
            nearest other answer within which a sample reaches it.

    Returns:
        ``(N, S)`` int64: the index in ``[0, P)`` of the answer reached (identical answers: the
        first of them), or ``-1`` where the sample reaches none.

    Raises:
        ValueError: bad shapes, ``closeness`` out of range, or an input whose answers are all
            one image (then nothing is ambiguous and coverage has no meaning).
    """
    if isinstance(closeness, bool) or not isinstance(closeness, (int, float)) \
            or not 0.0 < float(closeness) <= 0.5:
        raise ValueError(f"closeness must be a number in (0, 0.5] (a fraction of the distance "
                         f"between answers; 0.5 keeps the balls disjoint); got {closeness!r}.")
    check_samples(samples)
    if not isinstance(plausible, Tensor) or plausible.dim() != 5 \
            or plausible.shape[0] != samples.shape[0] or plausible.shape[2:] != samples.shape[2:]:
        shape = tuple(plausible.shape) if isinstance(plausible, Tensor) else type(plausible).__name__
        raise ValueError(f"plausible must be (N, P, C, H, W) matching samples "
                         f"{tuple(samples.shape)} in N, C, H and W; got {shape}.")
    between = _answer_distances(plausible)  # (N, P, P)
    different = between > 0
    if not bool(different.any(dim=2).any(dim=1).all()):
        raise ValueError("mode coverage needs at least two different plausible answers per input; "
                         "some input has a single answer (nothing to cover).")
    # Radius of each answer's ball: closeness x the distance to its nearest *different* answer.
    nearest_other = torch.where(different, between, torch.full_like(between, math.inf)).amin(2)
    radius = (float(closeness) ** 2) * nearest_other  # (N, P), in MSE units
    # First index of each group of identical answers: identical answers count once.
    first = torch.where(~different, torch.arange(plausible.shape[1]).expand_as(between),
                        torch.full_like(between, plausible.shape[1], dtype=torch.long)).amin(2)
    flat = _clipped(samples).flatten(2)  # (N, S, D)
    answers = plausible.detach().double().flatten(2)  # (N, P, D)
    errors = (_distance(flat, answers).square() / flat.shape[-1]).clamp_min(0.0)  # (N, S, P)
    nearest = errors.argmin(dim=2)  # (N, S): as nearest_plausible, per sample
    error = errors.gather(2, nearest.unsqueeze(2)).squeeze(2)
    inside = error < radius.gather(1, nearest)
    return torch.where(inside, first.gather(1, nearest), torch.full_like(nearest, -1))


def mode_coverage(samples: Tensor, plausible: Tensor, closeness: float = CLOSENESS) -> float:
    """Mean over inputs of the number of distinct plausible answers reached by the samples.

    ``0`` to ``P`` (``P``: answers per input); the rule in :func:`reached_answers`.

    Shape: samples ``(N, S, 3, H, W)``, plausible ``(N, P, 3, H, W)``.
    """
    reached = reached_answers(samples, plausible, closeness)
    counts = [len(set(row.tolist()) - {-1}) for row in reached]
    return float(sum(counts) / len(counts))


def plausible_hit_rate(samples: Tensor, plausible: Tensor, closeness: float = CLOSENESS) -> float:
    """Fraction of all ``N * S`` samples that reach some plausible answer (in ``[0, 1]``)."""
    return float((reached_answers(samples, plausible, closeness) >= 0).double().mean())


def ideal_mean_error(plausible: Tensor, count: int) -> float:
    """Expected RMSE between an ideal sampler's ``count``-sample mean and the exact mean.

    For a sampler that draws each of an input's ``P`` answers with probability ``1 / P``
    (equally likely answers, as ``moving_shapes``' futures), the mean of ``count`` independent
    draws differs from the exact mean of the answers by sampling noise alone:
    ``E[(mean_S - mu)^2] = var / S`` per pixel, ``var`` the answers' population variance. The
    result is ``sqrt(mean over inputs, channels, pixels of var / count)``: how far from MSE's
    answer an ideal sampler's mean lies, so a measured distance can be read against it.

    Shape: plausible ``(N, P, C, H, W)`` in ``[0, 1]``.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number >= 1 (samples per input); got {count!r}.")
    if not isinstance(plausible, Tensor) or plausible.dim() != 5:
        raise ValueError("plausible must be (N, P, C, H, W); got "
                         f"{tuple(plausible.shape) if isinstance(plausible, Tensor) else plausible!r}.")
    variance = plausible.detach().double().var(dim=1, unbiased=False)
    return float((variance.mean() / count).sqrt())


def rmse_between(first: Tensor, second: Tensor) -> float:
    """RMSE between two image sets, pooled over every image, channel and pixel (both clipped).

    For "how far is a stochastic run's sample mean from MSE's output".

    Shape: ``(N, 3, H, W)`` each, in ``[0, 1]``.
    """
    check_image_pair(first, second)
    difference = first.detach().double().clamp(0, 1) - second.detach().double().clamp(0, 1)
    return float(difference.square().mean().sqrt())


__all__ = [
    "CLOSENESS",
    "best_of_samples",
    "check_samples",
    "ideal_mean_error",
    "mode_coverage",
    "plausible_hit_rate",
    "psnr_best_of_samples",
    "reached_answers",
    "rmse_between",
    "sample_diversity",
    "sample_mean",
    "spread_skill",
]
