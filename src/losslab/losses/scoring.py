"""Proper scoring rules on samples: the energy score, the CRPS and a kernel score as losses.

A deterministic loss compares one prediction with one target; its minimiser over plausible
targets is a single summary of them (the mean for MSE). A *scoring rule* compares a set of
``m`` draws of a stochastic model ``x_1 .. x_m`` (one input's samples) with the one target ``y``
that happened, and a *proper* one is minimised in expectation by the distribution the targets
come from (Gneiting & Raftery 2007): a sampler can do no better than drawing from the truth.

Every score here has the same kernel form, for a dissimilarity ``d`` between two vectors::

    S = 1/m sum_j d(x_j, y)  -  1/2 * spread,
    spread = alpha * U + (1 - alpha) * V,
    U = 1/(m (m - 1)) sum_{j != k} d(x_j, x_k)     (the "fair" estimator: unbiased for E d(X, X'))
    V = 1/m^2         sum_{j, k}   d(x_j, x_k)     (the "standard" estimator: the score of the
                                                    empirical distribution of the m draws)

``alpha = 1`` is the fair estimator (Ferro 2014; its expectation over draws is the score of the
sampler's distribution for any ``m``), ``alpha = 0`` the standard one (biased towards too little
spread at small ``m``), and ``0 < alpha < 1`` the *almost-fair* mixing of ECMWF's AIFS-CRPS
(Lang et al. 2024, who train with ``alpha = 0.95``): it keeps a small pull of the members
towards each other, which the fair estimator lacks (under ``alpha = 1`` a member far from all
the others and from ``y`` costs nothing more as it moves further away).

- ``energy_score``: ``d(a, b) = ||a - b||^beta``, ``beta`` in ``(0, 2)`` (ES_beta, Gneiting &
  Raftery 2007 eq. 22; strictly proper for ``0 < beta < 2``).
- ``crps``: the energy score of each pixel and channel on its own (``d = |a - b|``), averaged
  over them (the univariate continuous ranked probability score, Matheson & Winkler 1976): it sees
  only per-pixel marginals, so per-pixel noise of the right spread scores like the truth.
- ``kernel_score``: ``d(a, b) = -k(a, b)`` for a positive-definite kernel ``k``, plus
  ``k(y, y) / 2`` so that it is ``MMD^2 / 2`` between the empirical draws and a point mass at
  ``y`` under ``alpha = 0`` (Gneiting & Raftery 2007 sec. 5.1; Gretton et al. 2012). Kernels:
  ``gaussian`` ``exp(-||a - b||^2 / (2 h^2))`` and ``laplacian`` ``exp(-||a - b|| / h)``.

Norms are *root-mean-square* over the compared elements, ``||v|| = sqrt(mean(v^2))``, in
``[0, 1]`` pixel units, so the value does not grow with the image size (this is the Euclidean
norm divided by ``sqrt(D)``: the energy score is the textbook one times ``D^(-beta/2)``, and a
kernel bandwidth ``h`` is an RMS difference, e.g. 0.1 = a tenth of the range).

What is a vector (``features=``):

- ``pixels`` (default): the whole viewed image (every channel and pixel) is one vector; the
  scores are taken once per input.
- ``patches``: at each position of a ``patch_size x patch_size`` window moved by
  ``patch_stride`` over the viewed image, the m samples' patches (vectors of ``C * size^2``
  values) are scored against the target's patch, and the scores are averaged over positions:
  a local score, which asks each neighbourhood to look like one of its plausible contents.
- ``vgg``: the whole feature map of a VGG19 layer (``layer``, default ``relu2_2``; random
  weights by default, offline, through :func:`losslab.losses.perceptual.vgg19_features` as the
  ``perceptual`` term builds it) is one vector (energy and kernel score) or gives one value per
  feature element (crps).

Colour and spatial views (``energy_score(luma)``, ``crps(highpass=1)``) are applied to every
sample and to the target before the vectors are formed (pixels and patches only).

Shape:
    - samples: ``(N, m, C, H, W)`` in ``input_range``, ``m >= 2`` draws per input (the spread
      term needs two draws).
    - target: ``(N, C, H, W)``.
    - output: scalar (mean over the N inputs; ``reduction='sum'`` their sum), or ``(N,)`` for
      ``reduction='none'``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.validation import (
    Reduction,
    check_choice,
    check_image,
    check_number,
    check_pair_values,
    reduce,
)
from losslab.losses.perceptual import VGG19_LAYERS, PerceptualLoss
from losslab.losses.registry import register_loss
from losslab.losses.views import IdentityView, ViewedLoss, ViewLike

Features = Literal["pixels", "patches", "vgg"]
Kernel = Literal["gaussian", "laplacian"]
Estimator = Literal["fair", "almost_fair", "standard"]

#: AIFS-CRPS's almost-fair mixing (Lang et al. 2024).
AIFS_ALPHA = 0.95


# -- functional forms ------------------------------------------------------------------------
def check_alpha(alpha: float) -> float:
    """Validate the fair/standard mixing ``alpha`` in ``[0, 1]``."""
    return check_number("alpha (fair/standard mixing)", alpha, low=0.0, high=1.0, example="0.95")


def _spread_weights(m: int, alpha: float) -> tuple[float, float]:
    """Weights ``(w_off, w_diag)`` of ``sum_{j != k} d(x_j, x_k)`` and ``sum_j d(x_j, x_j)`` in
    ``alpha * U + (1 - alpha) * V`` (see the module docstring)."""
    w_off = alpha / (m * (m - 1)) + (1.0 - alpha) / (m * m)
    return w_off, (1.0 - alpha) / (m * m)


def pairs_of(vectors: Tensor) -> tuple[Tensor, Tensor]:
    """The ``j < k`` pairs of the draws, ``(..., m, D) -> two (..., m(m-1)/2, D)`` tensors."""
    m = vectors.shape[-2]
    first, second = torch.triu_indices(m, m, offset=1, device=vectors.device)
    return vectors[..., first, :], vectors[..., second, :]


def rms_power(difference: Tensor, power: float) -> Tensor:
    """``sqrt(mean(difference^2, -1))^power``, with gradient 0 (not NaN) where it is 0."""
    squared = difference.pow(2).mean(dim=-1)
    positive = squared > 0
    safe = torch.where(positive, squared, torch.ones_like(squared))  # no inf in the backward
    return torch.where(positive, safe.pow(power / 2.0), torch.zeros_like(squared))


def kernel_form_score(to_target: Tensor, between_pairs: Tensor, self_term: float | Tensor,
                      alpha: float, m: int) -> Tensor:
    """``mean_j d(x_j, y) - 1/2 (alpha U + (1 - alpha) V)`` from its pieces.

    Args:
        to_target: ``d(x_j, y)``, ``(..., m)``.
        between_pairs: ``d(x_j, x_k)`` for the ``j < k`` pairs, ``(..., m(m-1)/2)``.
        self_term: ``d(x, x)`` (0 for a distance, ``-k(x, x)`` for a kernel).
        alpha: fair (1) to standard (0) mixing; m: the number of draws.
    """
    w_off, w_diag = _spread_weights(m, alpha)
    spread = 2.0 * w_off * between_pairs.sum(dim=-1) + w_diag * m * self_term
    return to_target.mean(dim=-1) - 0.5 * spread


def energy_score(samples: Tensor, target: Tensor, beta: float = 1.0, alpha: float = 1.0) -> Tensor:
    """Energy score ES_beta of draws against a target, per set of draws.

    Args:
        samples: ``(..., m, D)`` vectors, ``m >= 2``.
        target: ``(..., D)``.
        beta: exponent in ``(0, 2)``; alpha: fair (1) to standard (0) mixing.

    Returns:
        ``(...)``: ``mean_j ||x_j - y||^beta - 1/2 spread`` with the RMS norm.
    """
    to_target = rms_power(samples - target.unsqueeze(-2), beta)
    first, second = pairs_of(samples)
    return kernel_form_score(to_target, rms_power(first - second, beta), 0.0, alpha,
                             samples.shape[-2])


def crps_ensemble(samples: Tensor, target: Tensor, alpha: float = 1.0) -> Tensor:
    """Ensemble CRPS of every element: ``(..., m, D), (..., D) -> (..., D)``."""
    m = samples.shape[-2]
    to_target = (samples - target.unsqueeze(-2)).abs().movedim(-2, -1)
    first, second = pairs_of(samples)
    return kernel_form_score(to_target, (first - second).abs().movedim(-2, -1), 0.0, alpha, m)


def kernel_score(samples: Tensor, target: Tensor, kernel: Kernel = "gaussian",
                 bandwidth: float = 0.1, alpha: float = 1.0) -> Tensor:
    """Kernel score ``-mean_j k(x_j, y) + 1/2 spread_k + 1/2 k(y, y)`` per set of draws.

    ``k`` is ``gaussian`` (``exp(-||a-b||^2 / (2 h^2))``) or ``laplacian`` (``exp(-||a-b|| / h)``),
    ``||.||`` the RMS norm, ``h = bandwidth``; shapes as :func:`energy_score`.
    """
    def k(difference: Tensor) -> Tensor:
        if kernel == "gaussian":
            return torch.exp(-rms_power(difference, 2.0) / (2.0 * bandwidth * bandwidth))
        return torch.exp(-rms_power(difference, 1.0) / bandwidth)

    first, second = pairs_of(samples)
    # d = -k, and d(y, y) = -k(y, y) = -1 for both kernels; 1/2 k(y, y) makes S >= 0 at alpha=0.
    score = kernel_form_score(-k(samples - target.unsqueeze(-2)), -k(first - second), -1.0,
                              alpha, samples.shape[-2])
    return score + 0.5


def _check_count(name: str, value: object, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, e.g. {example}; got {value!r}.")
    return value


# -- modules ---------------------------------------------------------------------------------
class ScoringRuleLoss(ViewedLoss):
    """Base of the sample-based scores: shape checks for ``(samples, target)``, views applied to
    every sample, the vector space (``features=``), the per-input reduction.

    Subclasses implement :meth:`score` on ``(N, m, ..., D)`` vectors, returning ``(N, ...)``.
    """

    sample_based = True

    def __init__(
        self,
        view: ViewLike = "rgb",
        alpha: float = 1.0,
        features: Features = "pixels",
        patch_size: int = 8,
        patch_stride: int = 4,
        layer: str = "relu2_2",
        weights: str = "random",
        reduction: Reduction = "mean",
        *,
        lowpass: int | None = None,
        highpass: int | None = None,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(view, reduction, lowpass=lowpass, highpass=highpass,
                         input_range=input_range, check_values=check_values)
        self.alpha = check_alpha(alpha)
        self.features = check_choice("features", features, ("pixels", "patches", "vgg"))
        self.patch_size = _check_count("patch_size", patch_size, "8")
        self.patch_stride = _check_count("patch_stride", patch_stride, "4")
        if self.features == "patches":
            self.min_size = max(self.min_size or 1, self.patch_size)
        self.layer = layer
        self.weights = weights
        self.extractor: PerceptualLoss | None = None
        if self.features == "vgg":
            if not self.linear_view_is_identity:
                raise ValueError(
                    f"{self.registered_name}(features=vgg) reads RGB images; a colour or spatial "
                    "view cannot go before it. Drop the view, or use features=pixels/patches."
                )
            if layer not in VGG19_LAYERS:
                raise ValueError(f"unknown VGG19 layer {layer!r} for features=vgg; e.g. "
                                 "layer=relu2_2 (see the perceptual loss's layer names).")
            self.extractor = PerceptualLoss(layers=[layer], weights=weights)
            self.required_channels = 3
            self.min_size = self.extractor.min_size

    # -- naming ----------------------------------------------------------------------------
    def _options(self) -> list[str]:
        """The spec options that differ from the defaults (subclasses add theirs first)."""
        options = [] if isinstance(self.view, IdentityView) else [self.view.name]
        if self.spatial is not None:
            options.append(self.spatial.name)
        if self.alpha != 1.0:
            options.append(f"alpha={self.alpha:g}")
        if self.features != "pixels":
            options.append(f"features={self.features}")
        if self.features == "patches" and (self.patch_size, self.patch_stride) != (8, 4):
            options.append(f"patch_size={self.patch_size}, patch_stride={self.patch_stride}")
        if self.features == "vgg" and self.layer != "relu2_2":
            options.append(f"layer={self.layer}")
        if self.features == "vgg" and self.weights != "random":
            options.append(f"weights={self.weights}")
        return options

    @property
    def term_name(self) -> str:
        explicit = getattr(self, "_term_name", None)
        if explicit:
            return explicit
        options = self._options()
        return self.registered_name + (f"({', '.join(options)})" if options else "")

    @term_name.setter
    def term_name(self, value: str) -> None:
        self._term_name = value

    # -- checks ----------------------------------------------------------------------------
    def check_shapes(self, prediction: Tensor, target: Tensor) -> None:
        """``prediction`` are samples ``(N, m, C, H, W)`` with ``m >= 2``; ``target`` ``(N, C, H, W)``."""
        name = self.registered_name
        if not isinstance(prediction, Tensor) or prediction.dim() != 5:
            got = (f"{prediction.dim()}-D with shape {tuple(prediction.shape)}"
                   if isinstance(prediction, Tensor) else type(prediction).__name__)
            raise ValueError(
                f"{name} scores samples: expected (N, m, C, H, W) with m >= 2 draws per input, "
                f"got {got}. Draw them with losslab.models.stochastic.draw_samples."
            )
        if prediction.shape[1] < 2:
            raise ValueError(f"{name} needs m >= 2 samples per input (its spread term compares "
                             f"two draws); got m = {prediction.shape[1]}.")
        if not isinstance(target, Tensor) or target.dim() != 4 \
                or prediction.shape[:1] + prediction.shape[2:] != target.shape:
            shape = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
            raise ValueError(
                f"{name}: each sample and the target must have the same shape; got samples "
                f"{tuple(prediction.shape)} (N, m, C, H, W) and target {shape} (N, C, H, W)."
            )
        minimum = self.min_size
        if self.spatial is not None:
            minimum = self.spatial.min_input_size(minimum or 1)
        check_image(target, "target", channels=self.required_channels, min_size=minimum)
        check_image(prediction[:, 0], "samples", channels=self.required_channels, min_size=minimum)
        if prediction.dtype != target.dtype or prediction.device != target.device:
            raise TypeError(f"{name}: samples and target must share dtype and device; got "
                            f"{prediction.dtype} on {prediction.device} and {target.dtype} on "
                            f"{target.device}. Cast one with .to(other).")

    def validate(self, prediction: Tensor, target: Tensor) -> None:
        self.check_shapes(prediction, target)
        if self._values_checked():
            self._warn_range_mixup(self.input_range,
                                   *check_pair_values(prediction, target, self.input_range))

    # -- computation -----------------------------------------------------------------------
    def represent(self, images: Tensor) -> Tensor:
        """``(B, C, H, W)`` images in ``[0, 1]`` -> ``(B, L, D)``: ``L`` vector positions (1 for
        whole-image vectors, one per patch for ``patches``) of ``D`` values each."""
        if self.extractor is not None:
            mapped = self.extractor.features(images)[self.layer].to(images.dtype)
            return mapped.flatten(1).unsqueeze(1)
        viewed = self.viewed(images)
        if self.features == "patches":
            return F.unfold(viewed, self.patch_size, stride=self.patch_stride).transpose(1, 2)
        return viewed.flatten(1).unsqueeze(1)

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        n, m = prediction.shape[:2]
        vectors = self.represent(prediction.flatten(0, 1))
        vectors = vectors.reshape(n, m, *vectors.shape[1:]).transpose(1, 2)  # (N, L, m, D)
        reference = self.represent(target)  # (N, L, D)
        per_input = self.score(vectors, reference).flatten(1).mean(dim=1)
        return reduce(per_input, self.reduction)

    def score(self, samples: Tensor, target: Tensor) -> Tensor:
        """The score of ``(N, L, m, D)`` draws against ``(N, L, D)`` targets, ``(N, L, ...)``."""
        raise NotImplementedError


@register_loss("energy_score", positional=("view",), aliases=("es",))
class EnergyScoreLoss(ScoringRuleLoss):
    """Energy score ES_beta of m samples per input (proper; fair by default, alpha for AIFS mixing).

    ``mean_j ||x_j - y||^beta - 1/2 (alpha U + (1 - alpha) V)`` with ``U``/``V`` the fair and
    standard means of ``||x_j - x_k||^beta`` and ``||.||`` the RMS norm over the whole viewed
    image (``features=pixels``), over each patch (``patches``, averaged over patches) or over a
    VGG feature map (``vgg``); see :mod:`losslab.losses.scoring`.

    Args:
        view: colour view applied to every sample and the target (``energy_score(luma)``).
        beta: exponent in ``(0, 2)`` (default 1).
        alpha: 1 = fair (default), 0 = standard, 0.95 = AIFS-CRPS almost-fair.
        features, patch_size, patch_stride, layer, weights: the vector space (module docstring).

    Degenerate case: with ``alpha = 1`` and ``m = 2`` the score is
    ``(||x_1 - y||^beta + ||x_2 - y||^beta - ||x_1 - x_2||^beta) / 2``; for ``beta = 1`` it is 0,
    its minimum, whenever ``y`` lies on the segment between the two draws, however far apart
    they are (zero gradient: the pair can drift apart for free); it stays unbiased.

    Shape:
        - samples ``(N, m, C, H, W)`` (``m >= 2``), target ``(N, C, H, W)``; output scalar.

    Example:
        >>> loss = EnergyScoreLoss(beta=1.0)
        >>> loss(torch.rand(2, 4, 3, 16, 16), torch.rand(2, 3, 16, 16)).shape
        torch.Size([])
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        beta: float = 1.0,
        alpha: float = 1.0,
        features: Features = "pixels",
        patch_size: int = 8,
        patch_stride: int = 4,
        layer: str = "relu2_2",
        weights: str = "random",
        reduction: Reduction = "mean",
        *,
        lowpass: int | None = None,
        highpass: int | None = None,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(view, alpha, features, patch_size, patch_stride, layer, weights,
                         reduction, lowpass=lowpass, highpass=highpass, input_range=input_range,
                         check_values=check_values)
        self.beta = check_number("energy_score beta", beta, low=0.0, high=2.0, low_open=True,
                                 example="1")
        if self.beta == 2.0:  # ES_2 only compares means: proper but not strictly
            raise ValueError("energy_score beta must be in (0, 2): at beta=2 the score compares "
                             "only the mean of the samples (not strictly proper); e.g. beta=1.")

    def _options(self) -> list[str]:
        extra = [] if self.beta == 1.0 else [f"beta={self.beta:g}"]
        return super()._options() + extra

    def score(self, samples: Tensor, target: Tensor) -> Tensor:
        return energy_score(samples, target, self.beta, self.alpha)


@register_loss("crps", positional=("view",))
class CRPSLoss(ScoringRuleLoss):
    """Ensemble CRPS of m samples per input, per pixel and channel, averaged (fair by default).

    For every element ``i`` of the viewed image (or of a VGG feature map):
    ``mean_j |x_ji - y_i| - 1/2 (alpha U_i + (1 - alpha) V_i)``, then the mean over elements.
    It sees each pixel's marginal only: any per-pixel noise with the right marginals scores as
    well as the true joint distribution.

    Args:
        view: colour view (``crps(luma)``); ``lowpass``/``highpass`` a spatial view.
        estimator: ``fair`` (alpha = 1, default), ``almost_fair`` (AIFS-CRPS, ``alpha``,
            default 0.95) or ``standard`` (alpha = 0).
        alpha: the mixing, only with ``estimator=almost_fair``.
        features: ``pixels`` (default) or ``vgg`` (per feature element); ``layer``, ``weights``
            as for the energy score.

    Shape:
        - samples ``(N, m, C, H, W)`` (``m >= 2``), target ``(N, C, H, W)``; output scalar.
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        estimator: Estimator = "fair",
        alpha: float | None = None,
        features: Features = "pixels",
        layer: str = "relu2_2",
        weights: str = "random",
        reduction: Reduction = "mean",
        *,
        lowpass: int | None = None,
        highpass: int | None = None,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        estimator = check_choice("crps estimator", estimator, ("fair", "almost_fair", "standard"))  # type: ignore[assignment]
        if alpha is not None and estimator != "almost_fair":
            raise ValueError(f"crps alpha= is the almost-fair mixing; with estimator={estimator} "
                             "it is fixed. Pass estimator=almost_fair, or drop alpha.")
        mixing = {"fair": 1.0, "standard": 0.0}.get(estimator, AIFS_ALPHA if alpha is None else alpha)
        if features == "patches":
            raise ValueError("crps is per element, so patches add nothing; use "
                             "crps(features=pixels) or energy_score(features=patches).")
        super().__init__(view, mixing, features, 8, 4, layer, weights, reduction,
                         lowpass=lowpass, highpass=highpass, input_range=input_range,
                         check_values=check_values)
        self.estimator = estimator

    def _options(self) -> list[str]:
        options = [option for option in super()._options() if not option.startswith("alpha=")]
        if self.estimator != "fair":
            options.append(f"estimator={self.estimator}")
        if self.estimator == "almost_fair" and self.alpha != AIFS_ALPHA:
            options.append(f"alpha={self.alpha:g}")
        return options

    def score(self, samples: Tensor, target: Tensor) -> Tensor:
        return crps_ensemble(samples, target, self.alpha)


@register_loss("kernel_score", positional=("view",))
class KernelScoreLoss(ScoringRuleLoss):
    """Kernel (MMD) score of m samples per input with a Gaussian or Laplacian kernel (proper).

    ``-mean_j k(x_j, y) + 1/2 (alpha U_k + (1 - alpha) V_k) + 1/2`` with ``U_k``/``V_k`` the fair
    and standard means of ``k(x_j, x_k)``: half the squared maximum mean discrepancy between the
    draws and the target (exactly, under ``alpha = 0``). ``k = exp(-||a-b||^2 / (2 h^2))``
    (``gaussian``) or ``exp(-||a-b|| / h)`` (``laplacian``), ``||.||`` the RMS norm, ``h =
    bandwidth`` in ``[0, 1]`` pixel units. Strictly proper for characteristic kernels (both),
    but it saturates: draws farther than a few ``h`` from ``y`` get almost no gradient.

    Args:
        view: colour view; kernel: ``gaussian`` (default) or ``laplacian``; bandwidth: ``h > 0``
            (default 0.1); alpha: fair (1, default) to standard (0) mixing; features as for
            the energy score.

    Shape:
        - samples ``(N, m, C, H, W)`` (``m >= 2``), target ``(N, C, H, W)``; output scalar.
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        kernel: Kernel = "gaussian",
        bandwidth: float = 0.1,
        alpha: float = 1.0,
        features: Features = "pixels",
        patch_size: int = 8,
        patch_stride: int = 4,
        layer: str = "relu2_2",
        weights: str = "random",
        reduction: Reduction = "mean",
        *,
        lowpass: int | None = None,
        highpass: int | None = None,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(view, alpha, features, patch_size, patch_stride, layer, weights,
                         reduction, lowpass=lowpass, highpass=highpass, input_range=input_range,
                         check_values=check_values)
        self.kernel = check_choice("kernel", kernel, ("gaussian", "laplacian"))
        self.bandwidth = check_number("kernel_score bandwidth", bandwidth, low=0.0,
                                      low_open=True, example="0.1")

    def _options(self) -> list[str]:
        extra = [] if self.kernel == "gaussian" else [f"kernel={self.kernel}"]
        if self.bandwidth != 0.1:
            extra.append(f"bandwidth={self.bandwidth:g}")
        return extra + super()._options()

    def score(self, samples: Tensor, target: Tensor) -> Tensor:
        return kernel_score(samples, target, self.kernel, self.bandwidth, self.alpha)  # type: ignore[arg-type]

