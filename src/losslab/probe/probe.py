"""The loss probe: what does each loss charge per unit of pixel change, and what is it blind to?

:func:`run_probe` applies every matched perturbation (:mod:`losslab.probe.perturbations`) at
the same pixel RMSE to a set of images and evaluates each loss spec as
``loss(prediction=perturbed, target=original)``. A row of the result therefore reads "what this
loss charges per unit of pixel change" for each kind of change: ``l1(luma)`` charges nothing for
``hue`` or ``saturation``, ``l1(red)`` nothing for ``channel_green``/``channel_blue``, and MSE
charges every matched perturbation the same (``rmse^2``; its row is flat by construction and is
the baseline).

It also evaluates the natural-strength pair ``shift`` (a 1 px shift: sharp and plausible) and
``mean_of_two`` (the average of the +1 and -1 px shifts: a blur), and reports which one each
loss prefers (the lower value): MSE and L1 prefer the blur; and ``mean_of_two_noise`` (the blur
plus noise of the two shifts' per-pixel spread), what a sampler trained by a distributional
loss learns when the loss cannot tell noise from commitment.

Sample-based losses (``sample_based``: energy score, CRPS, kernel score) are given
:data:`PROBE_DRAWS` draws per image: a deterministic change is a sampler that always returns
that image (its draws are equal, so the score is a plain distance), the random ones (``noise``
and ``mean_of_two_noise``) draw independent noise per draw (``noise``: seeds ``seed + j``).

Normalisation: per loss, each raw value is divided by that loss's **mean raw value over the
matched perturbations**, so losses with different scales share one colour scale (a matched
row averages 1; MSE's row is all ones). The natural pair is divided by the same number. A loss
that is 0 for every matched perturbation gets normalised values of 0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.registry import suggest
from losslab.core.validation import check_image
from losslab.data.bundled import load_photo
from losslab.data.folder import find_images, read_image
from losslab.losses.spec import loss as build
from losslab.probe.perturbations import (
    MATCHED_PERTURBATIONS,
    NATURAL_PERTURBATIONS,
    PERTURBATIONS,
    mean_of_two_noise,
    perturb,
    shifted_pair,
)

#: Bundled photos the default probe set is cut from (two crops each).
PROBE_PHOTOS: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket")
#: Crop size of the default probe images: large enough for 5-scale MS-SSIM (>= 161 px).
PROBE_CROP = 192
#: What ``losslab probe`` measures when no spec is given: the pixel losses and their views,
#: SSIM, and every loss that needs no downloaded weights (random VGG features included, named
#: as such), so a user sees which of them prefer the sharp ``shift`` over the blurry
#: ``mean_of_two``, and which sample-based scores charge ``mean_of_two_noise`` less than both.
#: LPIPS and ImageNet-VGG terms need weights and are left out.
DEFAULT_PROBE_SPECS: tuple[str, ...] = (
    "mse", "l1", "l1(luma)", "l1(red)", "ssim", "perceptual(weights=random)",
    "swd", "swd(highpass=1)", "perceptual(weights=random, distance=swd)",
    "nlpd", "gmsd", "ms_gmsd", "haarpsi", "mdsi",
    "ciede2000", "delta_e76", "flip", "ms_flip", "robust", "robust(0)",
    "energy_score", "crps",
    "wavelet", "wavelet(mode=stationary)", "gradient_variance", "swd(colorspace=lab)",
    "contextual(weights=random)", "dists(weights=random)",
)

ProbeValues = dict[str, dict[str, dict[str, float]]]
#: Draws per image given to sample-based losses (``Loss.sample_based``).
PROBE_DRAWS = 8
#: Perturbations whose draws differ (independent noise per draw of a sample-based loss).
RANDOM_PERTURBATIONS: frozenset[str] = frozenset({"noise", "mean_of_two_noise"})

logger = logging.getLogger(__name__)


@dataclass
class ProbeResult:
    """Result of :func:`run_probe`.

    Attributes:
        values: ``{spec: {perturbation: {"raw": value, "normalised": value}}}`` for every spec
            and perturbation (matched ones first, then ``shift`` and ``mean_of_two``).
        rmse: pixel RMSE of every matched perturbation (``[0, 1]`` units).
        seed: seed of the random perturbations (noise).
        image_shape: ``(N, 3, H, W)`` of the probe images.
        achieved_rmse: ``{perturbation: [per-image RMSE]}`` actually reached (check of matching).
        normalisation: how ``normalised`` was computed (text for captions).
    """

    values: ProbeValues
    rmse: float
    seed: int
    image_shape: tuple[int, ...]
    achieved_rmse: dict[str, list[float]] = field(default_factory=dict)
    normalisation: str = "raw value / the loss's mean raw value over the matched perturbations"

    @property
    def specs(self) -> list[str]:
        """The loss specs, in the order given."""
        return list(self.values)

    @property
    def perturbations(self) -> list[str]:
        """The perturbation names, in table order."""
        first = next(iter(self.values.values()), {})
        return list(first)

    def __getitem__(self, spec: str) -> dict[str, dict[str, float]]:
        if spec not in self.values:
            raise KeyError(f"no probe row for {spec!r}; rows: {', '.join(self.values)}.")
        return self.values[spec]

    def raw(self, spec: str, perturbation: str) -> float:
        """The raw loss value of ``spec`` for ``perturbation``."""
        return self[spec][perturbation]["raw"]

    def normalised(self, spec: str, perturbation: str) -> float:
        """The normalised loss value of ``spec`` for ``perturbation``."""
        return self[spec][perturbation]["normalised"]

    def prefers(self, spec: str) -> str | None:
        """``"mean_of_two"`` or ``"shift"``: the one ``spec`` charges less (``"tie"`` if equal);
        ``None`` if the natural pair was not probed."""
        row = self[spec]
        if "shift" not in row or "mean_of_two" not in row:
            return None
        shift, blur = row["shift"]["raw"], row["mean_of_two"]["raw"]
        if abs(shift - blur) <= 1e-12 * max(abs(shift), abs(blur), 1.0):
            return "tie"
        return "mean_of_two" if blur < shift else "shift"

    def to_dict(self) -> ProbeValues:
        """The exact JSON structure ``{spec: {perturbation: {"raw", "normalised"}}}`` (a copy)."""
        return {s: {p: dict(v) for p, v in row.items()} for s, row in self.values.items()}


def _check_perturbations(names: Iterable[str] | None) -> list[str]:
    if names is None:
        return list(PERTURBATIONS)
    result = []
    for name in names:
        if name not in PERTURBATIONS:
            raise ValueError(
                f"unknown perturbation {name!r}.{suggest(name, PERTURBATIONS)} "
                f"Perturbations: {', '.join(PERTURBATIONS)}."
            )
        result.append(name)
    if not any(name in MATCHED_PERTURBATIONS for name in result):
        raise ValueError(
            "choose at least one matched perturbation (the normalisation divides by their mean); "
            f"matched: {', '.join(MATCHED_PERTURBATIONS)}."
        )
    return result


def _crop_box(height: int, width: int, size: int, fy: float, fx: float) -> tuple[int, int]:
    return round((height - size) * fy), round((width - size) * fx)


def default_probe_images(size: int = PROBE_CROP, crops_per_photo: int = 2) -> Tensor:
    """Deterministic crops of bundled photos: ``(len(PROBE_PHOTOS) * crops_per_photo, 3, size, size)``.

    Crops sit at fixed fractions of each photo (0.3/0.3 and 0.7/0.7 of the free range, more
    along the diagonal for more crops), in ``[0, 1]``.
    """
    if crops_per_photo < 1:
        raise ValueError(f"crops_per_photo must be >= 1; got {crops_per_photo}.")
    fractions = (
        [0.5] if crops_per_photo == 1
        else [0.3 + 0.4 * i / (crops_per_photo - 1) for i in range(crops_per_photo)]
    )
    crops = []
    for name in PROBE_PHOTOS:
        photo = load_photo(name)
        height, width = photo.shape[-2:]
        if min(height, width) < size:
            raise ValueError(f"photo {name!r} ({height}x{width}) is smaller than the crop {size}.")
        for fraction in fractions:
            top, left = _crop_box(height, width, size, fraction, fraction)
            crops.append(photo[:, top : top + size, left : left + size].float() / 255.0)
    return torch.stack(crops)


def folder_probe_images(image_dir: str | Path, size: int = PROBE_CROP, limit: int = 16) -> Tensor:
    """Centre crops ``size x size`` of up to ``limit`` images of a folder (recursive, sorted).

    Images smaller than ``size`` are first resized (bicubic, antialiased) so that their shorter
    side is ``size``. Unreadable or corrupt files are skipped with one warning line each (as
    the ``folder`` dataset does). Returns ``(N, 3, size, size)`` in ``[0, 1]``.

    Raises:
        ValueError: ``image_dir`` is not a directory, or holds no readable image.
    """
    folder = Path(image_dir)
    if not folder.is_dir():
        raise ValueError(f"image_dir {str(folder)!r} is not a directory.")
    crops = []
    skipped = 0
    for path in find_images(folder):
        if len(crops) == limit:
            break
        try:
            image = read_image(path)  # uint8, or float in [0, 1] for 16-bit files
            image = image.float() / 255.0 if image.dtype == torch.uint8 else image
        except Exception as error:  # PIL raises several types for corrupt files
            logger.warning("skipping unreadable image %s: %s", path, error)
            skipped += 1
            continue
        height, width = image.shape[-2:]
        if min(height, width) < size:
            factor = size / min(height, width)
            new = (max(size, round(height * factor)), max(size, round(width * factor)))
            image = F.interpolate(
                image[None], size=new, mode="bicubic", antialias=True, align_corners=False
            )[0].clamp(0, 1)
            height, width = new
        top, left = (height - size) // 2, (width - size) // 2
        crops.append(image[:, top : top + size, left : left + size])
    if not crops:
        raise ValueError(
            f"no readable image (.png, .jpg, .jpeg, .webp, .bmp) under {str(folder)!r} "
            f"({skipped} unreadable file(s) skipped). Put images there or leave out --images "
            "to use the bundled photos."
        )
    return torch.stack(crops)


def _evaluate(criterion: Any, prediction: Tensor, target: Tensor, spec: str, name: str) -> float:
    try:
        value = criterion(prediction, target)
    except (ValueError, TypeError) as error:
        raise ValueError(f"loss {spec!r} failed on perturbation {name!r}: {error}") from error
    if value.dim() != 0:
        raise ValueError(f"loss {spec!r} must return a scalar; got shape {tuple(value.shape)}.")
    return float(value)


def _as_draws(criterion: Any, name: str, changed: Tensor, draws: dict[str, Tensor]) -> Tensor:
    """What ``criterion`` is given for a change: the image, or for a sample-based loss
    :data:`PROBE_DRAWS` draws ``(N, m, C, H, W)`` (copies of a deterministic change)."""
    if not getattr(criterion, "sample_based", False):
        return changed
    if name in draws:
        return draws[name]
    return changed.unsqueeze(1).expand(-1, PROBE_DRAWS, *changed.shape[1:])


def run_probe(
    specs: Sequence[str],
    images: Tensor | None = None,
    *,
    image_dir: str | Path | None = None,
    rmse: float = 0.05,
    seed: int = 0,
    perturbations: Iterable[str] | None = None,
    device: str | torch.device | None = None,
) -> ProbeResult:
    """Evaluate each loss spec on every perturbation of the probe images at matched strength.

    Args:
        specs: loss specs (``"mse"``, ``"l1(luma)"``, ``"0.84*ms_ssim + 0.16*l1"``, ...);
            :data:`DEFAULT_PROBE_SPECS` is what ``losslab probe`` uses without specs.
        images: ``(N, 3, H, W)`` in ``[0, 1]``; default :func:`default_probe_images` (8 crops of
            192x192 from bundled photos) or the images of ``image_dir``.
        image_dir: a folder of images (centre crops of 192 px) used when ``images`` is None.
        rmse: pixel RMSE of every matched perturbation, in ``[0, 1]`` units (default 0.05).
        seed: seed of the random perturbations.
        perturbations: a subset of :data:`PERTURBATIONS` (default: all).
        device: where to evaluate the losses (default: the images' device).

    Returns:
        a :class:`ProbeResult`; ``result[spec][perturbation]["raw" | "normalised"]``.

    Raises:
        ValueError: unknown perturbation or loss names (with the closest names), bad images,
            or an ``rmse`` outside ``(0, 0.5)``.
    """
    if isinstance(specs, str):
        specs = [specs]
    specs = list(specs)
    if not specs:
        raise ValueError("give at least one loss spec, e.g. run_probe(['mse', 'l1(luma)']).")
    if not 0.0 < rmse < 0.5:
        raise ValueError(f"rmse is a pixel RMSE in [0, 1] units, in (0, 0.5); got {rmse}.")
    names = _check_perturbations(perturbations)
    criteria = {spec: build(spec, check_values=False) for spec in specs}  # fails early on typos
    if images is None:
        images = folder_probe_images(image_dir) if image_dir is not None else default_probe_images()
    elif image_dir is not None:
        raise ValueError("give either images or image_dir, not both.")
    check_image(images, "images", channels=3)
    images = images.detach()
    if device is not None:
        images = images.to(device)
    if not images.is_floating_point() or images.dtype == torch.float16:
        images = images.float()

    perturbed: dict[str, tuple[Tensor, Tensor]] = {}
    draws: dict[str, Tensor] = {}  # the PROBE_DRAWS draws of the random changes (sample-based)
    sampled = any(getattr(c, "sample_based", False) for c in criteria.values())
    achieved: dict[str, list[float]] = {}
    for name in names:
        if name in MATCHED_PERTURBATIONS:
            changed = perturb(name, images, rmse, seed=seed)
            perturbed[name] = (changed, images)
            achieved[name] = (changed.double() - images.double()).square().mean(
                dim=(1, 2, 3)).sqrt().tolist()
            if sampled and name in RANDOM_PERTURBATIONS:
                draws[name] = torch.stack([changed] + [perturb(name, images, rmse, seed=seed + j)
                                                       for j in range(1, PROBE_DRAWS)], dim=1)
    if any(name in NATURAL_PERTURBATIONS for name in names):
        original, shift, mean_of_two = shifted_pair(images)
        if "shift" in names:
            perturbed["shift"] = (shift, original)
        if "mean_of_two" in names:
            perturbed["mean_of_two"] = (mean_of_two, original)
        if "mean_of_two_noise" in names:
            generator = torch.Generator().manual_seed(seed)
            perturbed["mean_of_two_noise"] = (mean_of_two_noise(images, generator), original)
            if sampled:
                draws["mean_of_two_noise"] = mean_of_two_noise(
                    images, torch.Generator().manual_seed(seed), PROBE_DRAWS)

    values: ProbeValues = {}
    for spec, criterion in criteria.items():
        criterion = criterion.to(images.device).eval()
        with torch.no_grad():
            raw = {
                name: _evaluate(criterion, _as_draws(criterion, name, perturbed[name][0], draws),
                                perturbed[name][1], spec, name)
                for name in names
            }
        matched = [raw[name] for name in names if name in MATCHED_PERTURBATIONS]
        scale = sum(matched) / len(matched)
        values[spec] = {
            name: {"raw": raw[name], "normalised": raw[name] / scale if scale != 0 else 0.0}
            for name in names
        }
    return ProbeResult(values, float(rmse), int(seed), tuple(images.shape), achieved)
