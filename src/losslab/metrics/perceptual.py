"""Perceptual metrics that need pretrained networks: LPIPS, FID and KID.

These metrics are numbers only with their real pretrained weights; without them losslab reports
them as **unavailable, with the reason** — never as a number from random weights. The weights
are looked up where :mod:`losslab.weights` keeps them (the torch hub cache,
``torch.hub.get_dir()/checkpoints``, moved by ``$TORCH_HOME``) *before* anything is built, and
never downloaded here, so an offline machine answers at once instead of waiting for a timeout.

- LPIPS (Zhang et al. 2018): the ``lpips`` loss's own implementation
  (:mod:`losslab.losses.lpips`: one backbone table, one builder, one forward), AlexNet backbone by
  default. Needs the torchvision backbone file (``alexnet-owt-7be5be79.pth`` for
  ``net="alex"``); the linear heads ship with the ``lpips`` package. Lower is more similar; 0
  for identical images.
- FID / KID via ``torchmetrics.image.fid`` / ``kid``: need the ``torch-fidelity`` package and
  its Inception-v3 file ``weights-inception-2015-12-05-6726825d.pth``. They compare the
  *distributions* of outputs and targets (use hundreds of images for a meaningful value).

Each function returns ``(value, reason)``: ``(float, None)`` when computed, ``(None, reason)``
when unavailable.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor, nn

from losslab.losses.lpips import (
    LPIPSNet,
    build_lpips_model,
    lpips_backbone,
    lpips_distance,
    missing_lpips_weights,
)
from losslab.metrics._common import check_image_pair
from losslab.weights import get_weights_info, hub_checkpoint_dir

LpipsNet = LPIPSNet  # the metric's historical name for the same Literal

#: torch-fidelity's Inception-v3 weights (used by FID and KID).
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"

#: Built LPIPS networks by (net, device, backbone file): loading a backbone takes seconds, and
#: the path in the key makes a moved ``$TORCH_HOME`` build afresh.
_LPIPS_CACHE: dict[tuple[str, str, str], nn.Module] = {}


def lpips_unavailable_reason(net: LpipsNet = "alex") -> str | None:
    """Why LPIPS with backbone ``net`` cannot be computed here, or ``None`` if it can.

    The reason names the missing file, where it must go and how to carry it in
    (``losslab weights add FILE``); see :func:`losslab.losses.lpips.missing_lpips_weights`.
    """
    return missing_lpips_weights(net)


def _lpips_model(net: str, device: torch.device) -> nn.Module:
    backbone_path = get_weights_info(lpips_backbone(net).backbone_weights).path
    key = (net, str(device), str(backbone_path))
    if key not in _LPIPS_CACHE:
        _LPIPS_CACHE[key] = build_lpips_model(net, allow_download=False).to(device)
    return _LPIPS_CACHE[key]


def lpips(outputs: Tensor, targets: Tensor, net: LpipsNet = "alex") -> tuple[float | None, str | None]:
    """LPIPS distance (mean over the batch) and ``None``, or ``(None, reason)`` when unavailable.

    The mean of :func:`losslab.losses.lpips.lpips_distance`, the ``lpips`` loss's forward, on
    outputs clipped to ``[0, 1]``. Unavailable (with the reason) when the weights are missing or
    unreadable, or the images are smaller than the backbone accepts.

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]`` (converted to ``[-1, 1]`` inside),
          at least the backbone's ``min_size`` a side (31 px for alex, 16 vgg, 17 squeeze).
    """
    check_image_pair(outputs, targets)
    backbone = lpips_backbone(net)
    if min(outputs.shape[-2:]) < backbone.min_size:
        return None, (f"LPIPS ({net}) needs images of at least {backbone.min_size}x"
                      f"{backbone.min_size} px; got {outputs.shape[-2]}x{outputs.shape[-1]}.")
    reason = missing_lpips_weights(net)
    if reason is not None:
        return None, reason
    try:
        model = _lpips_model(net, outputs.device)
    except Exception as error:  # a corrupt or incompatible cache file
        return None, f"LPIPS ({net}) could not be built from the cached weights: {error}"
    with torch.no_grad():
        distances = lpips_distance(model, outputs.detach().float().clamp(0, 1),
                                   targets.detach().float().clamp(0, 1))
    return float(distances.mean()), None


def _missing_file_reason(what: str, file_name: str, how: str) -> str | None:
    path = hub_checkpoint_dir() / file_name
    if path.is_file():
        return None
    return (
        f"{what} weights not found at {path} (no download is attempted while measuring). "
        f"On a machine with internet run {how}, then copy the file there "
        "(or set TORCH_HOME to a directory holding hub/checkpoints/" + file_name + ")."
    )


def fid_kid_unavailable_reason() -> str | None:
    """Why FID/KID cannot be computed here, or ``None`` if they can."""
    if importlib.util.find_spec("torch_fidelity") is None:
        return (
            "FID/KID need the torch-fidelity package (pip install torch-fidelity) and its "
            f"Inception-v3 weights {INCEPTION_FILE}."
        )
    return _missing_file_reason(
        "FID/KID Inception-v3", INCEPTION_FILE,
        "`python -c \"from torchmetrics.image.fid import FrechetInceptionDistance as F; F()\"`",
    )


def fid_kid(
    outputs: Tensor, targets: Tensor, *, kid_subset_size: int = 50
) -> tuple[dict[str, float | None], dict[str, str]]:
    """FID and KID between the sets of outputs and targets (distribution metrics).

    Returns ``({"fid": value, "kid": value}, unavailable)`` where ``unavailable`` maps each
    metric that could not be computed to the reason (its value is then ``None``). KID uses
    subsets of ``min(kid_subset_size, N)`` images and reports the mean over subsets.

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]`` (resized to 299 px inside), N >= 2.
    """
    check_image_pair(outputs, targets)
    reason = fid_kid_unavailable_reason()
    if reason is None and outputs.shape[0] < 2:
        reason = f"FID/KID need at least 2 images per set; got {outputs.shape[0]}."
    if reason is not None:
        return {"fid": None, "kid": None}, {"fid": reason, "kid": reason}
    try:  # imported here: FID/KID need the optional torch-fidelity package; failures caught below
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        fid_metric = FrechetInceptionDistance(normalize=True).to(outputs.device)
        kid_metric = KernelInceptionDistance(
            normalize=True, subset_size=min(kid_subset_size, outputs.shape[0])
        ).to(outputs.device)
        with torch.no_grad():
            for metric in (fid_metric, kid_metric):
                metric.update(targets.float().clamp(0, 1), real=True)
                metric.update(outputs.float().clamp(0, 1), real=False)
            fid_value = float(fid_metric.compute())
            kid_value = float(kid_metric.compute()[0])
    except Exception as error:
        message = f"FID/KID failed with the cached Inception weights: {error}"
        return {"fid": None, "kid": None}, {"fid": message, "kid": message}
    return {"fid": fid_value, "kid": kid_value}, {}
