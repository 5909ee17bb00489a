"""Do codes keep identity? Nearest neighbours and top-1 retrieval of slightly changed images.

An autoencoder whose codes separate images lets a slightly augmented copy of an image find the
original as its nearest neighbour among the originals' codes. :func:`retrieval_top1` is the
fraction of images for which that works (1 = every image recognised, ``1/N`` = chance).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from losslab.core.validation import check_image

EncodeFn = Callable[[Tensor], Tensor]
AugmentFn = Callable[[Tensor, torch.Generator], Tensor]


def nearest_neighbours(
    codes: Tensor, k: int = 1, *, queries: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest codes by Euclidean distance: ``(indices (M, k), distances (M, k))``.

    Without ``queries`` every code is matched against the others (itself excluded, so ``M = N``
    and ``k <= N - 1``); with ``queries (M, D)`` each query is matched against all ``codes``.
    Ties go to the lower index. Codes of any shape ``(N, ...)`` are flattened to ``(N, D)``.
    """
    if not isinstance(codes, Tensor) or codes.dim() < 2:
        raise ValueError(
            f"codes must be a tensor (N, D) (or (N, ...), flattened); got "
            f"{tuple(codes.shape) if isinstance(codes, Tensor) else type(codes).__name__}."
        )
    database = codes.flatten(1).float()
    search = database if queries is None else queries.flatten(1).float().to(database.device)
    if search.shape[1] != database.shape[1]:
        raise ValueError(
            f"queries have {search.shape[1]} features but codes have {database.shape[1]}; "
            "encode both with the same model."
        )
    available = database.shape[0] - (1 if queries is None else 0)
    if not 1 <= k <= available:
        raise ValueError(f"k must be in [1, {available}] for {database.shape[0]} codes; got {k}.")
    distances = torch.cdist(search.double(), database.double())
    if queries is None:
        distances.fill_diagonal_(float("inf"))
    values, indices = torch.topk(distances, k, dim=1, largest=False, sorted=True)
    return indices, values.to(codes.dtype if codes.is_floating_point() else torch.float32)


def default_augment(
    images: Tensor,
    generator: torch.Generator,
    *,
    max_shift: int = 1,
    noise_std: float = 0.01,
    brightness: float = 0.03,
) -> Tensor:
    """A slight change: a random shift by up to ``max_shift`` px (edge-replicated), Gaussian noise
    of std ``noise_std`` and a brightness offset uniform in ``[-brightness, brightness]``, per
    image, clipped to ``[0, 1]``. Deterministic for a given ``generator``."""
    n, _, height, width = images.shape
    out = torch.empty_like(images)
    padded = torch.nn.functional.pad(images, (max_shift,) * 4, mode="replicate")
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)
    for i in range(n):
        dy, dx = (int(v) for v in shifts[i])
        top, left = max_shift + dy, max_shift + dx
        out[i] = padded[i, :, top : top + height, left : left + width]
    noise = torch.randn(images.shape, generator=generator).to(images) * noise_std
    offset = (torch.rand(n, 1, 1, 1, generator=generator).to(images) * 2 - 1) * brightness
    return (out + noise + offset).clamp(0, 1)


def retrieval_top1(
    encode_fn: EncodeFn,
    images: Tensor,
    augment: AugmentFn | None = None,
    *,
    seed: int = 0,
) -> float:
    """Fraction of images whose augmented copy has the original's code as nearest neighbour.

    Args:
        encode_fn: maps ``(N, 3, H, W)`` images to codes ``(N, ...)`` (e.g. ``model.encode``);
            called without gradients.
        images: ``(N, 3, H, W)`` in ``[0, 1]``, ``N >= 2``.
        augment: ``augment(images, generator) -> images`` making the slightly changed copies;
            default :func:`default_augment` (1 px shift, noise 0.01, brightness ±0.03).
        seed: seeds the augmentation (the result is deterministic).

    Returns:
        top-1 retrieval rate in ``[0, 1]``.
    """
    check_image(images, "images", channels=3)
    if images.shape[0] < 2:
        raise ValueError(f"retrieval needs at least 2 images; got {images.shape[0]}.")
    generator = torch.Generator().manual_seed(seed)
    changed = (augment or default_augment)(images, generator)
    if changed.shape != images.shape:
        raise ValueError(
            f"augment must keep the shape {tuple(images.shape)}; got {tuple(changed.shape)}."
        )
    with torch.no_grad():
        originals = encode_fn(images)
        queries = encode_fn(changed)
    indices, _ = nearest_neighbours(originals, 1, queries=queries)
    hits = indices[:, 0].cpu() == torch.arange(images.shape[0])
    return float(hits.float().mean())
