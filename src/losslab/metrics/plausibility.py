"""PSNR to the nearest plausible answer, for data whose plausible answers are known.

When the input does not decide the answer (a shape may move right, down, left or up), PSNR to
the one target that happened scores a model that commits to *another* plausible answer as badly
as one that draws nonsense, and rewards the blurry average of every answer (what MSE learns).
Data that knows its plausible answers (``moving_shapes``: every possible next frame of a clip,
:meth:`~losslab.data.moving_shapes.MovingShapesDataset.futures`) allows a fairer question: how
close is the output to *some* plausible answer?

``psnr_plausible`` answers it. For each image the nearest plausible answer is the one with the
smallest mean squared error to the (clipped) output; the metric is the pooled PSNR
(:func:`losslab.metrics.fidelity.pooled_psnr`, the same definition as ``psnr``) of the outputs against
those nearest answers. It is never below ``psnr`` when the actual target is one of the plausible
answers. A model that commits to one sharp plausible answer scores high; the average of all
answers (MSE's smear) is far from each of them, and so is a copy of the input.

Multi-hypothesis outputs ``(N, K, C, H, W)`` are scored on the best hypothesis per image (the
pair of hypothesis and plausible answer with the smallest MSE), and per hypothesis by
:func:`plausible_per_hypothesis`, which also counts which answer each hypothesis lands nearest:
a hypothesis that commits to one future (one direction) shows one dominant count.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from losslab.metrics._common import check_image_pair
from losslab.metrics.fidelity import per_image_psnr, pooled_psnr


def _check_plausible(outputs: Tensor, plausible: Tensor) -> None:
    if not isinstance(plausible, Tensor) or plausible.dim() != 5:
        shape = tuple(plausible.shape) if isinstance(plausible, Tensor) else type(plausible).__name__
        raise ValueError(
            f"plausible must be (N, P, C, H, W): P plausible answers per image; got {shape}. "
            "Stack each image's answers, e.g. torch.stack([dataset.futures(i) for i in ...])."
        )
    if plausible.shape[0] != outputs.shape[0] or plausible.shape[2:] != outputs.shape[-3:]:
        raise ValueError(
            f"plausible answers {tuple(plausible.shape)} (N, P, C, H, W) do not match outputs "
            f"{tuple(outputs.shape)}: N, C, H and W must be equal."
        )
    if plausible.shape[1] < 1:
        raise ValueError("plausible needs at least one answer per image (P >= 1); got P = 0.")


def _errors(outputs: Tensor, plausible: Tensor) -> Tensor:
    """MSE of every output ``(N, C, H, W)`` to each of its answers ``(N, P, ...)``: ``(N, P)``."""
    clipped = outputs.detach().float().clamp(0.0, 1.0).unsqueeze(1)
    return (clipped - plausible.detach().float()).square().flatten(2).mean(dim=2)


def nearest_plausible(outputs: Tensor, plausible: Tensor) -> tuple[Tensor, Tensor]:
    """Each output's nearest plausible answer (smallest MSE) and its index.

    Shape:
        - outputs: ``(N, C, H, W)`` in ``[0, 1]`` (clipped before comparing).
        - plausible: ``(N, P, C, H, W)`` in ``[0, 1]``, ``P`` answers per image.
        - returns ``(N, C, H, W)`` answers and ``(N,)`` int64 indices in ``[0, P)``.
    """
    _check_plausible(outputs, plausible)
    check_image_pair(outputs, plausible[:, 0])
    index = _errors(outputs, plausible).argmin(dim=1)
    return plausible[torch.arange(outputs.shape[0], device=plausible.device), index], index


def psnr_plausible(outputs: Tensor, plausible: Tensor) -> float:
    """Pooled PSNR (dB) of ``outputs`` against each one's nearest plausible answer.

    With multi-hypothesis ``outputs`` ``(N, K, C, H, W)`` each image is scored on the hypothesis
    nearest to any of its answers.

    Shape:
        - outputs: ``(N, C, H, W)`` or ``(N, K, C, H, W)`` in ``[0, 1]``.
        - plausible: ``(N, P, C, H, W)`` in ``[0, 1]``.

    Example:
        >>> import torch
        >>> answers = torch.zeros(1, 2, 3, 4, 4)
        >>> answers[0, 1] = 1.0                       # two plausible answers: black and white
        >>> psnr_plausible(torch.ones(1, 3, 4, 4), answers)  # white is one of them
        inf
    """
    if outputs.dim() == 5:
        outputs = best_plausible_hypothesis(outputs, plausible)[0]
    nearest, _ = nearest_plausible(outputs, plausible)
    return pooled_psnr(outputs, nearest)


def best_plausible_hypothesis(outputs: Tensor, plausible: Tensor) -> tuple[Tensor, Tensor]:
    """Per image, the hypothesis nearest to any plausible answer, and its index.

    Shape:
        - outputs: ``(N, K, C, H, W)``; plausible: ``(N, P, C, H, W)``.
        - returns ``(N, C, H, W)`` and ``(N,)`` int64 indices in ``[0, K)``.
    """
    if outputs.dim() != 5:
        raise ValueError(f"outputs must be (N, K, C, H, W); got shape {tuple(outputs.shape)}.")
    _check_plausible(outputs[:, 0], plausible)
    errors = torch.stack([_errors(outputs[:, k], plausible).min(dim=1).values
                          for k in range(outputs.shape[1])], dim=1)  # (N, K)
    index = errors.argmin(dim=1)
    return outputs[torch.arange(outputs.shape[0], device=outputs.device), index], index


def per_image_psnr_plausible(outputs: Tensor, plausible: Tensor) -> Tensor:
    """PSNR of each image to its nearest plausible answer, ``(N,)`` dB (uncapped; for spreads).

    Shape: as :func:`psnr_plausible`.
    """
    if outputs.dim() == 5:
        outputs = best_plausible_hypothesis(outputs, plausible)[0]
    nearest, _ = nearest_plausible(outputs, plausible)
    return per_image_psnr(outputs, nearest)


def plausible_per_hypothesis(outputs: Tensor, targets: Tensor, plausible: Tensor | None
                             ) -> dict[str, Any]:
    """Each hypothesis scored on its own: ``psnr`` to the target, ``psnr_plausible``, and counts.

    Args:
        outputs: ``(N, K, C, H, W)`` in ``[0, 1]``.
        targets: ``(N, C, H, W)``, the answers that happened.
        plausible: ``(N, P, C, H, W)`` or ``None`` (then only ``psnr`` per hypothesis).

    Returns:
        ``{"psnr": [K floats], "psnr_plausible": [K floats], "nearest_counts": K lists of P
        ints}``: hypothesis ``k`` was nearest to answer ``p`` in ``nearest_counts[k][p]``
        images (a hypothesis that commits to one answer has one dominant count). The last two
        keys only with ``plausible``.
    """
    if outputs.dim() != 5:
        raise ValueError(f"outputs must be (N, K, C, H, W); got shape {tuple(outputs.shape)}.")
    hypotheses = [outputs[:, k] for k in range(outputs.shape[1])]
    result: dict[str, Any] = {"psnr": [pooled_psnr(h, targets) for h in hypotheses]}
    if plausible is not None:
        result["psnr_plausible"] = [psnr_plausible(h, plausible) for h in hypotheses]
        counts = []
        for hypothesis in hypotheses:
            _, index = nearest_plausible(hypothesis, plausible)
            counts.append(torch.bincount(index.cpu(), minlength=plausible.shape[1]).tolist())
        result["nearest_counts"] = counts
    return result


__all__ = [
    "best_plausible_hypothesis",
    "nearest_plausible",
    "per_image_psnr_plausible",
    "plausible_per_hypothesis",
    "psnr_plausible",
]
