"""Every fixed measure of two images as a function: ``f(prediction, target, *, data_range=1.0,
...) -> Tensor (N,)``, one value per image, not reduced over the batch.

The loss Modules (:mod:`losslab.losses`) and the metrics (:mod:`losslab.metrics`) are built on
the same implementations: each function here checks its inputs, maps them from
``[0, data_range]`` to ``[0, 1]`` and calls the function the Module of the same name calls
(``losslab.loss("gmsd")`` is the batch mean of :func:`gmsd`; ``1 - ssim`` is the ``ssim`` loss).
Modules add what a training needs on top: colour and spatial views, ``input_range``, value
checks, reductions, weights in a sum.

Conventions shared by every function:

- ``prediction``, ``target``: ``(N, C, H, W)`` float tensors of the same shape, dtype and
  device (``C = 3`` RGB where a function says so; a function that takes RGB or greyscale says
  which channel counts it accepts).
- ``data_range``: the inputs span ``[0, data_range]`` (``1.0`` for float images, ``255`` for
  byte values), as in torchmetrics and piq. Every value is computed in ``[0, 1]`` units, so
  ``f(x, y, data_range=255)`` equals ``f(x / 255, y / 255)``: an MSE is in squared ``[0, 1]``
  units whatever the data range.
- returns ``(N,)`` in the inputs' dtype, differentiable with respect to ``prediction`` (and to
  ``target`` except where noted: LPIPS and the perceptual distance treat the target as a
  reference); no clipping, no syncing value checks.

Example:
    >>> import torch
    >>> from losslab import functional as LF
    >>> x, y = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    >>> LF.ssim(x, y).shape
    torch.Size([4])
    >>> bool(torch.allclose(LF.psnr(255 * x, 255 * y, data_range=255), LF.psnr(x, y)))
    True

The table of every function, its range and its paper is in ``docs/functional.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import Tensor, nn

from losslab.core.cielab import srgb_to_lab
from losslab.core.validation import check_number, check_pair
from losslab.losses import color_difference as _color_difference
from losslab.losses import flip as _flip
from losslab.losses import frequency as _frequency
from losslab.losses import gmsd as _gmsd
from losslab.losses import gradient as _gradient
from losslab.losses import haarpsi as _haarpsi
from losslab.losses import lpips as _lpips
from losslab.losses import mdsi as _mdsi
from losslab.losses import nlpd as _nlpd
from losslab.losses import pixel as _pixel
from losslab.losses import scoring as _scoring
from losslab.losses import structural as _structural
from losslab.losses import swd as _swd
from losslab.losses.contextual import ContextualLoss
from losslab.losses.dists import DISTSLoss
from losslab.losses.flip import MSFLIPLoss
from losslab.losses.gradient_variance import GradientVarianceLoss
from losslab.losses.perceptual import DEFAULT_LAYERS, Distance, PerceptualLoss
from losslab.losses.robust import RobustLoss
from losslab.losses.wavelet import WaveletLoss
from losslab.losses.weighted_sum import fold_samples
from losslab.weights import get_weights_info


def _unit(
    prediction: Tensor,
    target: Tensor,
    data_range: float,
    *,
    channels: int | None = None,
    min_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Check the pair and ``data_range``; the pair mapped to ``[0, 1]`` (unchanged for 1.0)."""
    check_pair(prediction, target, channels=channels, min_size=min_size)
    scale = check_number("data_range", data_range, low=0.0, low_open=True,
                         example="1.0 for [0, 1] images or 255 for byte values")
    if scale == 1.0:
        return prediction, target
    return prediction / scale, target / scale


# -- pixel distances -------------------------------------------------------------------------
def mse(prediction: Tensor, target: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Mean squared error per image, in squared ``[0, 1]`` units: ``mean((p - t)^2)``.

    Shape: ``(N, C, H, W)`` -> ``(N,)``, values ``>= 0`` (0 when equal, at most 1). The ``mse``
    loss is its batch mean.
    """
    prediction, target = _unit(prediction, target, data_range)
    return _pixel.mse(prediction, target)


def l1(prediction: Tensor, target: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Mean absolute error per image, in ``[0, 1]`` units: ``mean(|p - t|)``.

    Shape: ``(N, C, H, W)`` -> ``(N,)``, values in ``[0, 1]`` (0 when equal).
    """
    prediction, target = _unit(prediction, target, data_range)
    return _pixel.l1(prediction, target)


def charbonnier(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
                eps: float = 1e-3) -> Tensor:
    """Charbonnier penalty per image, ``mean(sqrt((p - t)^2 + eps^2))`` in ``[0, 1]`` units
    (a smooth L1; Charbonnier et al. 1994, as used by Lai et al. 2017, LapSRN).

    Args:
        eps: the smoothing scale in ``[0, 1]`` units (> 0); identical images give ``eps``.

    Shape: ``(N, C, H, W)`` -> ``(N,)``, values ``>= eps``.
    """
    eps = check_number("charbonnier eps", eps, low=0.0, low_open=True, example="1e-3")
    prediction, target = _unit(prediction, target, data_range)
    return _pixel.charbonnier(prediction, target, eps)


def huber(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
          delta: float = 0.1) -> Tensor:
    """Huber penalty per image (Huber 1964): ``0.5 d^2`` for ``|d| < delta``, else
    ``delta (|d| - 0.5 delta)``, averaged; ``d = p - t`` in ``[0, 1]`` units.

    Args:
        delta: the switch point in ``[0, 1]`` units (> 0; 0.1 is 10 % of the range).

    Shape: ``(N, C, H, W)`` -> ``(N,)``, values ``>= 0``.
    """
    delta = check_number("huber delta", delta, low=0.0, low_open=True, example="0.1")
    prediction, target = _unit(prediction, target, data_range)
    return _pixel.huber(prediction, target, delta)


def psnr(prediction: Tensor, target: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio per image in dB: ``10 log10(data_range^2 / mse)``.

    Per image (torchmetrics' ``reduction="none"``), no clipping, ``inf`` for an exact image.
    The metric in ``metrics.json`` is pooled over a set (:func:`losslab.metrics.pooled_psnr`);
    :func:`losslab.metrics.per_image_psnr` is this function on outputs clipped to ``[0, 1]``.

    Shape: ``(N, C, H, W)`` -> ``(N,)``; higher is better (about 20-40 dB for photos).
    """
    prediction, target = _unit(prediction, target, data_range)
    return _pixel.psnr(prediction, target)


# -- structure --------------------------------------------------------------------------------
def ssim(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
         window_size: int = _structural.WINDOW_SIZE, sigma: float = _structural.SIGMA) -> Tensor:
    """Structural similarity index per image (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004).

    Gaussian window (11 px, sigma 1.5), ``K1 = 0.01``, ``K2 = 0.03``, valid region only, per
    channel then averaged; the conventions of scikit-image and pytorch-msssim
    (:mod:`losslab.losses.structural`). The ``ssim`` loss is ``1 -`` its batch mean.

    Shape: ``(N, C, H, W)`` with ``H, W >= window_size`` -> ``(N,)`` in ``[-1, 1]``, 1 when equal.
    """
    check_number("data_range", data_range, low=0.0, low_open=True, example="1.0 or 255")
    return _structural.ssim(prediction, target, data_range=data_range, window_size=window_size,
                            sigma=sigma)


def ms_ssim(prediction: Tensor, target: Tensor, *, data_range: float = 1.0, scales: int = 5,
            window_size: int = _structural.WINDOW_SIZE, sigma: float = _structural.SIGMA) -> Tensor:
    """Multi-scale SSIM per image (Wang, Simoncelli, Bovik, Asilomar 2003).

    Contrast-structure at the finer scales, full SSIM at the coarsest, weights ``(0.0448,
    0.2856, 0.3001, 0.2363, 0.1333)`` (the first ``scales`` renormalised), 2x2 ceil-mode
    averaging between scales. The ``ms_ssim`` loss is ``1 -`` its batch mean; the metric uses as
    many scales as the image holds.

    Shape: ``(N, C, H, W)`` with ``min(H, W) >= (window_size - 1) 2^(scales - 1) + 1`` (161 px
    for 5 scales, 41 for 3) -> ``(N,)`` in ``[0, 1]``, 1 when equal.
    """
    check_number("data_range", data_range, low=0.0, low_open=True, example="1.0 or 255")
    return _structural.ms_ssim(prediction, target, scales=scales, data_range=data_range,
                               window_size=window_size, sigma=sigma)


def gdl(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
        alpha: float = 1.0) -> Tensor:
    """Gradient difference per image (Mathieu, Couprie, LeCun, ICLR 2016):
    ``mean ||dx p| - |dx t||^alpha + mean ||dy p| - |dy t||^alpha`` in ``[0, 1]`` units.

    Args:
        alpha: exponent, 1 to 10 (1 in the paper).

    Shape: ``(N, C, H, W)`` with ``H, W >= 2`` -> ``(N,)``, ``>= 0``; 0 for a constant offset.
    """
    prediction, target = _unit(prediction, target, data_range, min_size=2)
    return _gradient.gradient_difference(prediction, target, alpha)


def frequency(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
              distance: _frequency.SpectrumDistance = "l1", focal: float = 0.0) -> Tensor:
    """Distance of orthonormal 2-D Fourier spectra per image, optionally focal (Jiang, Dai, Wu,
    Loy, "Focal Frequency Loss", ICCV 2021): ``mean_f w_f |fft2(p - t)_f|`` (``"l1"``) or
    ``|.|^2`` (``"mse"``, equal to the pixel MSE when ``focal = 0``), ``[0, 1]`` units.

    Args:
        distance: ``"l1"`` or ``"mse"``.
        focal: exponent ``alpha`` in ``[0, 10]`` of the detached per-frequency weights.

    Shape: ``(N, C, H, W)`` -> ``(N,)``, ``>= 0``. Half-precision inputs are transformed in
    float32 (the CPU FFT has no half kernels) and returned in their dtype.
    """
    prediction, target = _unit(prediction, target, data_range)
    dtype = prediction.dtype
    if dtype in (torch.float16, torch.bfloat16):
        prediction, target = prediction.float(), target.float()
    return _frequency.spectrum_distance(prediction, target, distance, focal).to(dtype)


# -- published quality indices --------------------------------------------------------------------
def nlpd(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
         eps: float = 1e-10) -> Tensor:
    """Normalised Laplacian pyramid distance per image (Laparra, Ballé, Berardino, Simoncelli,
    "Perceptual image quality assessment using a normalized Laplacian pyramid", HVEI 2016), per
    channel then averaged; plenoptic's convention (:mod:`losslab.losses.nlpd`).

    Shape: ``(N, C, H, W)`` with ``H, W >= 33`` -> ``(N,)``, ``>= 0``, 0 when equal.
    """
    prediction, target = _unit(prediction, target, data_range)
    return _nlpd.nlpd(prediction, target, eps=eps)


def gmsd(prediction: Tensor, target: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Gradient magnitude similarity deviation per image (Xue, Zhang, Mou, Bovik, IEEE TIP 2014);
    piq's convention (Y of YIQ for RGB, 2x2 halving, Prewitt, ``c = 170 / 255^2``).

    Shape: ``(N, 1 or 3, H, W)`` with ``H, W >= 2`` -> ``(N,)``, ``>= 0`` (0 when equal).
    """
    prediction, target = _unit(prediction, target, data_range)
    return _gmsd.gmsd(prediction, target)


def ms_gmsd(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
            chromatic: bool = False, alpha: float = 0.5,
            weights: Sequence[float] = _gmsd.MS_GMSD_WEIGHTS) -> Tensor:
    """Multi-scale GMSD per image (Zhang, Sander, Bermak, ICASSP 2017); MS-GMSDc with
    ``chromatic=True`` (RGB only); piq's convention.

    Shape: ``(N, 1 or 3, H, W)`` with ``H, W >= 2^len(weights) + 1`` (17 px) -> ``(N,)``,
    ``>= 0`` (0 when equal).
    """
    prediction, target = _unit(prediction, target, data_range)
    return _gmsd.ms_gmsd(prediction, target, weights=weights, alpha=alpha, chromatic=chromatic)


def haarpsi(prediction: Tensor, target: Tensor, *, data_range: float = 1.0, scales: int = 3,
            subsample: bool = True) -> Tensor:
    """Haar wavelet-based perceptual similarity index per image (Reisenhofer, Bosse, Kutyniok,
    Wiegand, Signal Processing: Image Communication 2018); piq's convention. The ``haarpsi``
    loss is ``1 -`` its batch mean.

    Shape: ``(N, 1 or 3, H, W)`` with ``H, W >= 2^(scales + 1)`` -> ``(N,)`` in ``[0, 1]``,
    1 when equal.
    """
    prediction, target = _unit(prediction, target, data_range)
    return _haarpsi.haarpsi(prediction, target, scales=scales, subsample=subsample)


def mdsi(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
         combination: _mdsi.Combination = "sum") -> Tensor:
    """Mean deviation similarity index per image (Nafchi, Shahkolaei, Hedjam, Cheriet, IEEE
    Access 2016); piq's convention. A deviation: 0 when equal, larger is worse.

    Args:
        combination: ``"sum"`` or ``"mult"`` of the gradient and chroma similarities.

    Shape: ``(N, 1 or 3, H, W)`` with ``H, W >= 2`` (greyscale repeated to RGB) -> ``(N,)``,
    ``>= 0``.
    """
    prediction, target = _unit(prediction, target, data_range)
    return _mdsi.mdsi(prediction, target, combination=combination)


def swd(prediction: Tensor, target: Tensor, *, data_range: float = 1.0, patch_size: int = 5,
        projections: int = 64, scales: int = 3, seed: int = 0) -> Tensor:
    """Multi-scale sliced Wasserstein distance of the patch distributions per image (Heitz,
    Vanhoey, Chambon, Belcour, CVPR 2021; He, Wang, Li, Ma, ECCV 2024), squared ``[0, 1]`` units.

    ``projections`` unit directions in the ``C k^2`` patch space are drawn from ``seed`` (the
    ``swd`` loss's ``projections_mode="fixed"`` directions for the same seed); levels of a
    Gaussian pyramid are weighted by their patch counts (:mod:`losslab.losses.swd`).

    Shape: ``(N, C, H, W)`` with ``H, W >= (k - 1) 2^(scales - 1) + 1`` -> ``(N,)``, ``>= 0``.
    """
    prediction, target = _unit(prediction, target, data_range,
                               min_size=_swd.swd_min_size(patch_size, scales))
    directions = _swd.random_projections(
        projections, prediction.shape[1], patch_size,
        generator=torch.Generator().manual_seed(seed),  # float32, as the loss's buffer
    )
    return _swd.multiscale_sliced_wasserstein(prediction, target, directions, scales)


# -- learned and feature distances ----------------------------------------------------------------
#: Built networks by their arguments and device: building one reads its weight files (seconds).
_NETWORKS: dict[tuple[object, ...], nn.Module] = {}


def _cached(key: tuple[object, ...], build: Callable[[], nn.Module], device: torch.device
            ) -> nn.Module:
    full_key = (*key, str(device))
    if full_key not in _NETWORKS:
        _NETWORKS[full_key] = build().to(device)
    return _NETWORKS[full_key]


def lpips(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
          net: _lpips.LPIPSNet = "alex") -> Tensor:
    """LPIPS learned perceptual distance per image (Zhang, Isola, Efros, Shechtman, Wang, CVPR
    2018; v0.1 linear heads of the ``lpips`` package, ImageNet backbone).

    Needs the backbone's torchvision file in the hub cache (``losslab weights``); it is never
    downloaded here. The target is a reference: no gradient flows into it.

    Args:
        net: ``"alex"`` (31 px minimum), ``"vgg"`` (16 px) or ``"squeeze"`` (17 px).

    Shape: ``(N, 3, H, W)`` -> ``(N,)``, ``>= 0`` (typically 0-0.8), 0 when equal.
    """
    backbone = _lpips.lpips_backbone(net)
    prediction, target = _unit(prediction, target, data_range, channels=3,
                               min_size=backbone.min_size)
    # The backbone file's path is part of the key: a moved $TORCH_HOME builds afresh.
    model = _cached(("lpips", backbone.net, str(get_weights_info(backbone.backbone_weights).path)),
                    lambda: _lpips.build_lpips_model(backbone.net, allow_download=False),
                    prediction.device)
    return _lpips.lpips_distance(model, prediction, target)


def perceptual(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
               layers: Sequence[str] = DEFAULT_LAYERS, layer_weights: Sequence[float] | None = None,
               distance: Distance = "mse", style: float = 0.0, weights: str = "imagenet",
               seed: int = 0) -> Tensor:
    """VGG19 feature distance per image (Johnson, Alahi, Fei-Fei, ECCV 2016), plus a Gram-matrix
    style term with ``style > 0`` (Gatys, Ecker, Bethge, CVPR 2016): the ``perceptual`` loss of
    the same arguments, image by image (:meth:`~losslab.losses.PerceptualLoss.per_image`).

    Args:
        layers, layer_weights, distance, style: as for :class:`~losslab.losses.PerceptualLoss`.
        weights: ``"imagenet"`` (the torchvision file must be in the hub cache), ``"random"``
            (offline; a random network, from ``seed``) or the path of a VGG19 state dict.

    Shape: ``(N, 3, H, W)`` with ``H, W >= 2^k`` (``k`` max-pools up to the deepest layer) ->
    ``(N,)``, ``>= 0``. The target is a reference: no gradient flows into it.
    """
    prediction, target = _unit(prediction, target, data_range, channels=3)
    layers = [layers] if isinstance(layers, str) else list(layers)
    key = ("perceptual", tuple(layers), None if layer_weights is None else tuple(layer_weights),
           distance, float(style), weights, seed)
    module = cast(PerceptualLoss, _cached(
        key, lambda: PerceptualLoss(layers, layer_weights, distance, style, weights, seed),
        prediction.device))
    module.check_shapes(prediction, target)
    return module.per_image(prediction, target)


# -- the measures added with issues 19 and 21, through their loss modules ------------------------
def _image_by_image(key: tuple[object, ...], build: Callable[[], nn.Module], prediction: Tensor,
                    target: Tensor) -> Tensor:
    """``(N,)``: the loss built by ``build`` (cached under ``key``) on each image pair alone, so
    the value is exactly what the loss Module gives for that image (one implementation)."""
    loss = _cached(key, build, prediction.device)
    return torch.stack([loss(prediction[i : i + 1], target[i : i + 1])
                        for i in range(prediction.shape[0])])


def ciede2000(prediction: Tensor, target: Tensor, *, data_range: float = 1.0, k_l: float = 1.0,
              k_c: float = 1.0, k_h: float = 1.0) -> Tensor:
    """Mean CIEDE2000 colour difference per image (CIE 142-2001, as Sharma, Wu & Dalal 2005 state
    it), sRGB (IEC 61966-2-1) -> CIELAB (D65): about 1 is a just-noticeable difference.

    Shape: ``(N, 3, H, W)`` -> ``(N,)``, ``>= 0`` in CIELAB units, 0 when equal; the
    ``ciede2000`` loss and the ``err_deltae`` metric use the same per-pixel map.
    """
    prediction, target = _unit(prediction, target, data_range, channels=3)
    return _color_difference.ciede2000_lab(srgb_to_lab(prediction), srgb_to_lab(target), k_l, k_c,
                                           k_h).flatten(1).mean(dim=1)


def delta_e76(prediction: Tensor, target: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Mean CIE 1976 colour difference ``sqrt(dL^2 + da^2 + db^2)`` per image (CIELAB, D65).

    Shape: ``(N, 3, H, W)`` -> ``(N,)``, ``>= 0`` in CIELAB units, 0 when equal.
    """
    prediction, target = _unit(prediction, target, data_range, channels=3)
    return _color_difference.delta_e76_map(prediction, target).flatten(1).mean(dim=1)


def flip(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
         pixels_per_degree: float = _flip.DEFAULT_PIXELS_PER_DEGREE) -> Tensor:
    """Mean LDR-FLIP per image (Andersson et al., HPG 2020): the difference a viewer flipping
    between the two images sees at ``pixels_per_degree`` (67.02: a 4K 0.7 m wide monitor seen
    from 0.7 m).

    Shape: ``(N, 3, H, W)`` -> ``(N,)``, in ``[0, 1]``, 0 when equal.
    """
    prediction, target = _unit(prediction, target, data_range, channels=3)
    return _flip.flip_map(prediction, target, pixels_per_degree).flatten(1).mean(dim=1)


def ms_flip(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
            pixels_per_degree: float = _flip.DEFAULT_PIXELS_PER_DEGREE,
            factors: Sequence[float] = (1.0, 0.5, 0.25)) -> Tensor:
    """FLIP averaged over viewing distances (``pixels_per_degree * factor``): losslab's
    multi-scale FLIP (no published definition; see ``docs/losses.md``).

    Shape: ``(N, 3, H, W)`` -> ``(N,)``, in ``[0, 1]``, 0 when equal.
    """
    prediction, target = _unit(prediction, target, data_range, channels=3)
    key = ("ms_flip", float(pixels_per_degree), tuple(float(f) for f in factors))
    return _image_by_image(key, lambda: MSFLIPLoss(pixels_per_degree=pixels_per_degree, factors=list(factors),
                                                   check_values=False), prediction, target)


def robust(prediction: Tensor, target: Tensor, *, data_range: float = 1.0, alpha: float = 1.0,
           scale: float = 0.05) -> Tensor:
    """Barron's general robust loss per image (CVPR 2019) with fixed ``alpha`` and ``scale``
    (in ``[0, 1]`` units): 2 is L2, 1 pseudo-Huber, 0 Cauchy, -2 Geman-McClure.

    Shape: ``(N, C, H, W)`` -> ``(N,)``, ``>= 0``, 0 when equal.
    """
    prediction, target = _unit(prediction, target, data_range)
    key = ("robust", float(alpha), float(scale))
    return _image_by_image(key, lambda: RobustLoss(alpha=alpha, scale=scale, check_values=False),
                           prediction, target)


def wavelet(prediction: Tensor, target: Tensor, *, data_range: float = 1.0, wave: str = "haar",
            levels: int = 3, band_weights: Sequence[float] | None = None,
            mode: str = "decimated") -> Tensor:
    """Distance between wavelet sub-bands per image (the ``wavelet`` loss: L1 per band, bands
    weighted by level; ``mode`` decimated or stationary; ptwt's coefficients).

    Shape: ``(N, C, H, W)`` -> ``(N,)``, ``>= 0``, 0 when equal.
    """
    prediction, target = _unit(prediction, target, data_range)
    weights = None if band_weights is None else tuple(float(w) for w in band_weights)
    key = ("wavelet", wave, int(levels), weights, mode)
    return _image_by_image(key, lambda: WaveletLoss(wave=wave, levels=levels,
                                                    band_weights=weights, mode=mode,  # type: ignore[arg-type]
                                                    check_values=False), prediction, target)


def gradient_variance(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
                      patch_size: int = 8) -> Tensor:
    """Gradient-variance distance per image (Abrahamyan et al., ICASSP 2022): MSE between the
    variances of Sobel gradients over non-overlapping ``patch_size`` patches, on BT.601 luma.

    Shape: ``(N, 3, H, W)`` -> ``(N,)``, ``>= 0``, 0 when equal.
    """
    prediction, target = _unit(prediction, target, data_range)
    return _image_by_image(("gradient_variance", int(patch_size)),
                           lambda: GradientVarianceLoss(patch_size=patch_size, check_values=False),
                           prediction, target)


def contextual(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
               layers: Sequence[str] = ("relu3_4",), bandwidth: float = 0.5,
               weights: str = "imagenet", seed: int = 0) -> Tensor:
    """Contextual loss per image (Mechrez, Talmi, Zelnik-Manor, ECCV 2018) on VGG19 features:
    ``-log`` of the mean best contextual similarity; blind to where features are.

    Memory grows with the number of feature positions squared (the loss refuses sizes that do
    not fit, naming the largest that does).

    Shape: ``(N, 3, H, W)`` -> ``(N,)``, ``>= 0``.
    """
    prediction, target = _unit(prediction, target, data_range, channels=3)
    key = ("contextual", tuple(layers), float(bandwidth), weights, int(seed))
    return _image_by_image(key, lambda: ContextualLoss(layers=list(layers), bandwidth=bandwidth,
                                                       weights=weights, seed=seed,
                                                       check_values=False), prediction, target)


def dists(prediction: Tensor, target: Tensor, *, data_range: float = 1.0,
          weights: str = "imagenet", seed: int = 0) -> Tensor:
    """DISTS per image (Ding, Ma, Wang, Simoncelli, TPAMI 2020): structure and texture
    similarity of VGG16 features with learned alpha/beta (``losslab weights``; ``random``
    offline, for smoke tests only).

    Shape: ``(N, 3, H, W)`` -> ``(N,)``, in ``[0, 1]``, 0 when equal.
    """
    prediction, target = _unit(prediction, target, data_range, channels=3)
    return _image_by_image(("dists", weights, int(seed)),
                           lambda: DISTSLoss(weights=weights, seed=seed,  # type: ignore[arg-type]
                                             check_values=False), prediction, target)


# -- proper scoring rules: many draws against one target -----------------------------------------
def _unit_samples(samples: Tensor, target: Tensor, data_range: float) -> tuple[Tensor, Tensor]:
    if samples.dim() != 5 or target.dim() != 4 or samples.shape[0] != target.shape[0] \
            or samples.shape[2:] != target.shape[1:]:
        raise ValueError(f"scoring rules take samples (N, m, C, H, W) and a target (N, C, H, W); "
                         f"got {tuple(samples.shape)} and {tuple(target.shape)}.")
    if samples.shape[1] < 2:
        raise ValueError(f"a scoring rule needs m >= 2 draws per input (its spread term compares "
                         f"two); got m = {samples.shape[1]}.")
    folded, repeated = fold_samples(samples, target)
    folded, repeated = _unit(folded, repeated, data_range)
    return folded.view(samples.shape), repeated.view(samples.shape)[:, 0]


def energy_score(samples: Tensor, target: Tensor, *, data_range: float = 1.0, beta: float = 1.0,
                 alpha: float = 1.0) -> Tensor:
    """Energy score per input (Gneiting & Raftery 2007) of ``m`` draws against the target, on
    whole images with the RMS norm: ``mean_j ||x_j - y||^beta - 1/2 spread``; ``alpha`` mixes
    the fair (1) and the standard (0) spread estimator. A proper scoring rule: the true
    distribution of targets minimises it in expectation.

    Shape: samples ``(N, m, C, H, W)`` with ``m >= 2``, target ``(N, C, H, W)`` -> ``(N,)``.
    """
    samples, target = _unit_samples(samples, target, data_range)
    return _scoring.energy_score(samples.flatten(2), target.flatten(1), beta, alpha)


def crps(samples: Tensor, target: Tensor, *, data_range: float = 1.0,
         alpha: float = 1.0) -> Tensor:
    """Ensemble CRPS per input, averaged over pixels and channels (each pixel a univariate
    forecast; ``alpha`` 1 fair, 0 standard, 0.95 AIFS's almost-fair).

    Shape: samples ``(N, m, C, H, W)`` with ``m >= 2``, target ``(N, C, H, W)`` -> ``(N,)``.
    """
    samples, target = _unit_samples(samples, target, data_range)
    return _scoring.crps_ensemble(samples.flatten(2), target.flatten(1), alpha).mean(dim=1)


def kernel_score(samples: Tensor, target: Tensor, *, data_range: float = 1.0,
                 kernel: str = "gaussian", bandwidth: float = 0.1, alpha: float = 1.0) -> Tensor:
    """Kernel score per input (Gneiting & Raftery 2007, section 5), Gaussian or Laplacian kernel
    of the RMS distance between whole images, bandwidth in ``[0, 1]`` units.

    Shape: samples ``(N, m, C, H, W)`` with ``m >= 2``, target ``(N, C, H, W)`` -> ``(N,)``.
    """
    samples, target = _unit_samples(samples, target, data_range)
    return _scoring.kernel_score(samples.flatten(2), target.flatten(1), kernel,  # type: ignore[arg-type]
                                 bandwidth, alpha)


__all__ = [
    "charbonnier",
    "ciede2000",
    "contextual",
    "crps",
    "delta_e76",
    "dists",
    "energy_score",
    "flip",
    "frequency",
    "gdl",
    "gmsd",
    "gradient_variance",
    "haarpsi",
    "huber",
    "kernel_score",
    "l1",
    "lpips",
    "mdsi",
    "ms_flip",
    "ms_gmsd",
    "ms_ssim",
    "mse",
    "nlpd",
    "perceptual",
    "psnr",
    "robust",
    "ssim",
    "swd",
    "wavelet",
]
