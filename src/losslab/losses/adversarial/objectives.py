"""GAN objectives as small pure functions of discriminator logits (no state, no modules).

Every function takes logit tensors of any shape (a patch map ``(N, 1, h, w)``, a per-pixel map
``(N, 1, H, W)``) and returns a scalar; a multi-scale discriminator's objective is the mean of
the per-scale values (:func:`scale_mean`). The adversarial term
(:class:`~losslab.losses.adversarial.loss.AdversarialLoss`) and the discriminator step
(:mod:`losslab.train.adversarial`) both call these, so the generator and the discriminator
cannot disagree on what an objective means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.validation import check_choice

Objective = Literal["vanilla", "lsgan", "hinge", "relativistic"]
OBJECTIVES: tuple[str, ...] = ("vanilla", "lsgan", "hinge", "relativistic")


def _relativistic(real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Relativistic-average logits: ``C(real) - E[C(fake)]`` and ``C(fake) - E[C(real)]``."""
    return real_logits - fake_logits.mean(), fake_logits - real_logits.mean()


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor, objective: Objective) -> Tensor:
    """The discriminator's loss (minimised by D) from its logits on real and generated images.

    With ``softplus(z) = log(1 + e^z)`` and means over every patch logit:

    - ``vanilla``: ``E[softplus(-real)] + E[softplus(fake)]`` (binary cross-entropy).
    - ``lsgan``: ``E[(real - 1)^2] + E[fake^2]``.
    - ``hinge``: ``E[relu(1 - real)] + E[relu(1 + fake)]``.
    - ``relativistic`` (average, ESRGAN): ``E[softplus(-(real - E[fake]))] +
      E[softplus(fake - E[real])]``.

    Shape: logits of any (equal or not) shapes; output scalar, ``>= 0``.
    """
    check_choice("objective", objective, OBJECTIVES)
    if objective == "vanilla":
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if objective == "lsgan":
        return (real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean()
    if objective == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    real_rel, fake_rel = _relativistic(real_logits, fake_logits)
    return F.softplus(-real_rel).mean() + F.softplus(fake_rel).mean()


def generator_loss(
    fake_logits: Tensor, real_logits: Tensor | None = None, objective: Objective = "hinge"
) -> Tensor:
    """The generator's adversarial loss from D's logits on its outputs (D's targets swapped).

    - ``vanilla`` (non-saturating): ``E[softplus(-fake)]``.
    - ``lsgan``: ``E[(fake - 1)^2]``.
    - ``hinge``: ``-E[fake]``.
    - ``relativistic``: ``E[softplus(real - E[fake])] + E[softplus(-(fake - E[real]))]``;
      needs ``real_logits`` (D on the targets).

    Shape: logits of any shape; output scalar.
    """
    check_choice("objective", objective, OBJECTIVES)
    if objective == "vanilla":
        return F.softplus(-fake_logits).mean()
    if objective == "lsgan":
        return (fake_logits - 1).pow(2).mean()
    if objective == "hinge":
        return -fake_logits.mean()
    if real_logits is None:
        raise ValueError(
            "the relativistic objective compares against real logits: pass real_logits "
            "(the discriminator's output on the targets)."
        )
    real_rel, fake_rel = _relativistic(real_logits, fake_logits)
    return F.softplus(real_rel).mean() + F.softplus(-fake_rel).mean()


def discriminator_accuracy(real_logits: Tensor, fake_logits: Tensor, objective: Objective) -> Tensor:
    """Fraction of patch logits D classifies correctly, over real and fake together.

    A real logit is correct when it is above the objective's decision threshold, a fake one
    when below: threshold 0 for ``vanilla`` and ``hinge``, 0.5 for ``lsgan`` (targets 1 and 0);
    ``relativistic`` thresholds the relativistic logits ``real - E[fake]`` and
    ``fake - E[real]`` at 0. Returns a scalar in ``[0, 1]`` (0.5 = chance).
    """
    check_choice("objective", objective, OBJECTIVES)
    threshold = 0.5 if objective == "lsgan" else 0.0
    if objective == "relativistic":
        real_logits, fake_logits = _relativistic(real_logits, fake_logits)
    correct = (real_logits > threshold).sum() + (fake_logits < threshold).sum()
    return correct.float() / (real_logits.numel() + fake_logits.numel())


def r1_penalty(real_logits: Tensor, real_images: Tensor, gamma: float) -> Tensor:
    """R1 gradient penalty (Mescheder et al. 2018): ``gamma / 2 * E_n[||grad_x D(x_n)||^2]``.

    ``D(x_n)`` is the sum of sample ``n``'s patch logits; the squared gradient norm is summed
    over ``(C, H, W)`` and averaged over the batch. ``real_images`` ``(N, C, H, W)`` must have
    had ``requires_grad`` set before ``real_logits`` were computed from it; the result is a
    scalar ``>= 0``, differentiable w.r.t. D's parameters (``create_graph=True``).
    """
    if not real_images.requires_grad:
        raise ValueError(
            "r1_penalty needs real_images with requires_grad=True before D is applied: use "
            "real = real.detach().requires_grad_(True); logits = D(real)."
        )
    (gradient,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return 0.5 * gamma * gradient.pow(2).flatten(1).sum(1).mean()


def adaptive_weight(
    reconstruction_loss: Tensor,
    generator_loss: Tensor,
    last_layer: Tensor,
    *,
    eps: float = 1e-4,
    max_weight: float = 1e4,
) -> Tensor:
    """VQGAN's adaptive weight ``||grad_w L_rec|| / (||grad_w L_G|| + eps)``, clamped, detached.

    ``w`` is the generator's last layer weight; both scalar losses must be graph-connected to it
    (the graphs are retained for the later backward). Balances the adversarial gradient against
    the reconstruction gradient where they meet the output. Returns a 0-d tensor in
    ``[0, max_weight]``.
    """
    rec_grad, g_grad = (
        torch.autograd.grad(value, last_layer, retain_graph=True, allow_unused=True)[0]
        for value in (reconstruction_loss, generator_loss)
    )
    if g_grad is None or rec_grad is None:
        which = "generator" if g_grad is None else "reconstruction"
        raise ValueError(
            f"the {which} loss does not depend on the given last layer; pass the generator's "
            "final layer weight as last_layer (e.g. model.head.weight)."
        )
    weight = rec_grad.norm() / (g_grad.norm() + eps)
    return weight.clamp(0.0, max_weight).detach()


def feature_matching_loss(fake_features: Sequence[Tensor], real_features: Sequence[Tensor]) -> Tensor:
    """pix2pixHD feature matching: mean over layers of the mean L1 between feature maps.

    ``real_features`` are treated as constants (detached). Shape: two equally long lists of
    feature maps ``(N, C_l, H_l, W_l)``; output scalar ``>= 0``.
    """
    if len(fake_features) != len(real_features) or not fake_features:
        raise ValueError(
            f"feature lists must be non-empty and of equal length; got {len(fake_features)} "
            f"and {len(real_features)}."
        )
    total = sum(
        F.l1_loss(fake, real.detach()) for fake, real in zip(fake_features, real_features, strict=True)
    )
    return total / len(fake_features)  # type: ignore[return-value]


def scale_mean(values: Sequence[Tensor]) -> Tensor:
    """Mean of per-scale scalars (one scale: the value itself, so no stack is allocated)."""
    return values[0] if len(values) == 1 else torch.stack(list(values)).mean()
