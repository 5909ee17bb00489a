"""Loss weights set by gradient share: ``0.01*perceptual@share(0.2)``.

Why a weight of 5e-3 and not 1e-2? Term gradients differ by orders of magnitude, so a written
weight says little about how hard a term pushes. ``grad_share/<term>`` measures it: the norm of
the term's weighted gradient at the model output over the sum of every term's norm (see
:mod:`losslab.train.gradient_share`). ``@share(t)`` makes that a control: the term's weight is
set during training so that its share tracks ``t``. It generalises VQGAN's adaptive weight
(which balances one adversarial term against the reconstruction at the last layer) to any term.

The rule, for a :class:`~losslab.losses.WeightedSum` with written weights ``w_i``, schedule
factors ``f_i(step)`` (``@start``/``@ramp``) and share targets ``t_i`` on some terms:

1. every training call measures each active term's *unweighted* gradient norm at the model
   output, ``n_i = ||d term_i / d prediction||_2`` (averaged over DDP processes, so every rank
   computes the same weight), and smooths it: ``N_i <- 0.8 N_i + 0.2 n_i``
   (:data:`SHARE_SMOOTHING`, a window of about 5 calls: long enough to damp batch-to-batch
   noise, short enough to follow a term whose gradient shrinks as it is fitted; the first
   measurement initialises ``N_i``);
2. the unshared terms' weighted norm is ``G = sum_{j unshared} |w_j f_j| N_j``; a share target
   composes with a schedule by scaling the target, ``s_i = t_i * f_i(step)``, so
   ``@ramp(a, b)@share(0.2)`` ramps the share from 0 to 0.2;
3. the shares ``s_i`` are reached exactly when ``|w_i f_i m_i| N_i = s_i G / (1 - sum_k s_k)``;
   so the multiplier on the written weight is ``m_i = t_i G / ((1 - sum_k s_k) |w_i| N_i)``,
   clamped to :data:`SHARE_RANGE` (``[1e-3, 1e3]``: ``0.01*perceptual@share(0.2)`` can range
   from 1e-5 to 10), and the effective weight is ``w_i f_i m_i`` (logged as ``weight/<term>``);
4. the new multiplier weights the same call's total (the values are computed first, then
   measured, then summed), and stays until the next training call. Where ``G = 0`` or
   ``N_i = 0`` (nothing measured yet, a term with no gradient) the multiplier keeps its value;
   it starts at 1 (the written weight). An adaptive adversarial term's reconstruction total
   (computed while the terms are evaluated) uses the previous call's multipliers.

The targets of one sum must add up to less than 1, and at least one term must be unshared (it
sets the scale). The smoothed norms and multipliers are buffers of the sum, so they are saved
in checkpoints and restored on resume; the rule is deterministic given the seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Weight of the previous smoothed gradient norm in step 1 of the rule (~5-call window).
SHARE_SMOOTHING = 0.8
#: Range of the multiplier on the written weight (step 3 of the rule).
SHARE_RANGE = (1e-3, 1e3)


def check_share_targets(targets: Sequence[float | None], names: Sequence[str]) -> None:
    """Raise ``ValueError`` unless every target is in ``(0, 1)``, they sum to < 1 and at least
    one term has none."""
    given = [(name, t) for name, t in zip(names, targets, strict=True) if t is not None]
    if not given:
        return
    for name, target in given:
        if not 0.0 < target < 1.0:
            raise ValueError(f"@share of {name!r} must lie in (0, 1), a fraction of the gradient; "
                             f"got {target}.")
    if len(given) == len(targets):
        raise ValueError("every term has @share: at least one term must keep a fixed weight (it "
                         "sets the scale the shares are measured against); drop one @share.")
    total = sum(t for _, t in given)
    if total >= 1.0:
        raise ValueError(f"the @share targets add up to {total:g}; they must sum to less than 1 "
                         "(the unshared terms take the rest).")


def smooth_norms(previous: Sequence[float], measured: Sequence[float | None]) -> list[float]:
    """Step 1: ``N <- 0.8 N + 0.2 n`` per term; unmeasured (``None``), non-finite or zero
    measurements keep the previous value; a previous 0 (never measured) takes ``n`` as is."""
    smoothed = []
    for old, new in zip(previous, measured, strict=True):
        if new is None or not math.isfinite(new) or new <= 0.0:
            smoothed.append(old)
        elif old <= 0.0:
            smoothed.append(new)
        else:
            smoothed.append(SHARE_SMOOTHING * old + (1.0 - SHARE_SMOOTHING) * new)
    return smoothed


def share_multipliers(
    norms: Sequence[float],
    weights: Sequence[float],
    factors: Sequence[float],
    targets: Sequence[float | None],
    current: Sequence[float],
) -> list[float]:
    """Steps 2-3: the multiplier on each term's written weight (1 for unshared terms).

    Args:
        norms: smoothed unweighted gradient norms ``N_i`` (0 = not measured).
        weights: written weights ``w_i``; factors: schedule factors ``f_i(step)`` in ``[0, 1]``.
        targets: share targets ``t_i`` (``None`` for unshared terms).
        current: the multipliers in use (kept where the rule is undefined).
    """
    unshared = sum(abs(w * f) * n for w, f, n, t in zip(weights, factors, norms, targets, strict=True)
                   if t is None)
    total_share = sum(t * f for t, f in zip(targets, factors, strict=True) if t is not None)
    low, high = SHARE_RANGE
    result = []
    for weight, norm, target, old in zip(weights, norms, targets, current, strict=True):
        if target is None:
            result.append(1.0)
        elif unshared <= 0.0 or norm <= 0.0 or weight == 0.0:
            result.append(old)
        else:
            wanted = target * unshared / ((1.0 - total_share) * abs(weight) * norm)
            result.append(min(high, max(low, wanted)))
    return result
