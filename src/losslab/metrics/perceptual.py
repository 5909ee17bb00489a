"""Perceptual metrics that need pretrained networks: LPIPS, FID and KID.

These metrics are numbers only with their real pretrained weights; without them losslab reports
them as **unavailable, with the reason** — never as a number from random weights. The weights
are looked up in the torch hub cache (``torch.hub.get_dir()/checkpoints``, moved by
``$TORCH_HOME``) *before* anything is built, so an offline machine answers at once instead of
waiting for a download to time out.

- LPIPS (Zhang et al. 2018) via ``torchmetrics`` (AlexNet backbone by default): needs the
  torchvision ImageNet backbone file (``alexnet-owt-7be5be79.pth`` for ``net="alex"``); the
  linear heads ship with ``torchmetrics``. Lower is more similar; 0 for identical images.
- FID / KID via ``torchmetrics.image.fid`` / ``kid``: need the ``torch-fidelity`` package and
  its Inception-v3 file ``weights-inception-2015-12-05-6726825d.pth``. They compare the
  *distributions* of outputs and targets (use hundreds of images for a meaningful value).

Each function returns ``(value, reason)``: ``(float, None)`` when computed, ``(None, reason)``
when unavailable.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from losslab.metrics._common import check_image_pair

LpipsNet = Literal["alex", "vgg", "squeeze"]

#: torchvision backbone file each LPIPS variant needs (torch.hub cache names).
LPIPS_BACKBONE_FILES: dict[str, str] = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
#: torch-fidelity's Inception-v3 weights (used by FID and KID).
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"

_LPIPS_CACHE: dict[tuple[str, str], nn.Module] = {}


def hub_checkpoint_path(file_name: str) -> Path:
    """Where torch hub keeps (and torchvision looks for) a downloaded weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def _missing_file_reason(what: str, file_name: str, how: str) -> str | None:
    path = hub_checkpoint_path(file_name)
    if path.is_file():
        return None
    return (
        f"{what} weights not found at {path} (no download is attempted while measuring). "
        f"On a machine with internet run {how}, then copy the file there "
        "(or set TORCH_HOME to a directory holding hub/checkpoints/" + file_name + ")."
    )


def lpips_unavailable_reason(net: LpipsNet = "alex") -> str | None:
    """Why LPIPS with backbone ``net`` cannot be computed here, or ``None`` if it can."""
    if net not in LPIPS_BACKBONE_FILES:
        raise ValueError(f"LPIPS net must be one of {', '.join(LPIPS_BACKBONE_FILES)}; got {net!r}.")
    builder = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}[net]
    return _missing_file_reason(
        f"LPIPS ({net}) backbone", LPIPS_BACKBONE_FILES[net],
        f"`python -c \"import torchvision; torchvision.models.{builder}(weights='DEFAULT')\"`",
    )


def _lpips_module(net: str, device: torch.device) -> nn.Module:
    key = (net, str(device))
    if key not in _LPIPS_CACHE:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        module = LearnedPerceptualImagePatchSimilarity(net_type=net, normalize=True)
        _LPIPS_CACHE[key] = module.to(device).eval()
    return _LPIPS_CACHE[key]


def lpips(outputs: Tensor, targets: Tensor, net: LpipsNet = "alex") -> tuple[float | None, str | None]:
    """LPIPS distance (mean over the batch) and ``None``, or ``(None, reason)`` when unavailable.

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]`` (converted to ``[-1, 1]`` inside).
    """
    check_image_pair(outputs, targets)
    reason = lpips_unavailable_reason(net)
    if reason is not None:
        return None, reason
    try:
        module = _lpips_module(net, outputs.device)
    except Exception as error:  # a corrupt or incompatible cache file
        return None, f"LPIPS ({net}) could not be built from the cached weights: {error}"
    with torch.no_grad():
        module.reset()
        value = module(outputs.float().clamp(0, 1), targets.float().clamp(0, 1))
        module.reset()
    return float(value), None


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
    try:
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
