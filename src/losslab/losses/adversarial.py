"""Adversarial loss terms: a PatchGAN discriminator trained alongside the generator.

A pixel loss rewards the *average* of the plausible answers (blur); an adversarial term rewards
outputs a discriminator cannot tell from real images (sharp, but free to differ from the target
in detail). ``adversarial`` is a normal loss term in a spec; it owns its discriminator ``D``
(a submodule, so ``state_dict()`` holds its weights) and D's Adam optimizer
(:meth:`AdversarialLoss.optimizer_state_dict`). Calling the loss gives the *generator's* loss
with D frozen; :meth:`AdversarialLoss.discriminator_step` updates D.

Ranges: the term receives images in its declared ``input_range`` (``[0, 1]`` by default), maps
them to ``[0, 1]`` like every loss, and feeds D ``2 * x - 1``, i.e. ``[-1, 1]``. A condition
(the model's input, for ``conditional=true``) is assumed to use the same range and is mapped the
same way.

Use in your own PyTorch loop (D's parameters are not in ``model.parameters()``; move the
criterion to the device with ``criterion.to(device)``)::

    import torch, losslab
    from losslab.losses import adversarial_terms

    criterion = losslab.loss("l1 + 0.01*adversarial(objective=hinge)")
    gan_terms = adversarial_terms(criterion)    # find the terms (and link helpers), once
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    for inputs, targets in loader:
        prediction = model(inputs)
        loss = criterion(prediction, targets)   # l1 + 0.01 * generator loss (D frozen)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for term in gan_terms:
            logs = term.discriminator_step(prediction, targets)   # D update(s) -> floats

Contract with the trainer (see docs/architecture.md, "Adversarial terms"), per training step::

    for term in adversarial_terms(criterion):   # once at setup; also set_last_layer if adaptive
        term.set_step(global_step)              # gates the term before its `start` step
    loss = criterion(prediction, target, condition)     # G loss; D is frozen inside
    manual_backward(loss); generator_optimizer.step()
    for term in adversarial_terms(criterion):
        logs = term.discriminator_step(prediction, target, condition)   # zero_grad/backward/step
    term.last_logs                              # {'g_loss', 'adaptive_weight'} of the last call

Checkpoints: D's weights are in ``criterion.state_dict()``; save and restore D's optimizer with
``term.optimizer_state_dict()`` / ``term.load_optimizer_state_dict(state)``.

Gradients: while the generator loss is computed, D's parameters have ``requires_grad`` switched
off, so ``loss.backward()`` leaves D's ``.grad`` untouched (and costs no D weight gradients);
:meth:`~AdversarialLoss.discriminator_step` zeroes D's gradients before its backward and sets
them to ``None`` after its step, so no stale gradient reaches either optimiser. Under
``torch.distributed`` the D step averages D's gradients over processes itself; keep the
criterion's parameters out of the generator's DDP reducer (e.g. Lightning
``ddp_find_unused_parameters_true``).

Adaptive weight (``adaptive=true``, VQGAN): the generator loss is multiplied by
``lambda = ||grad_w L_rec|| / (||grad_w L_G|| + 1e-4)`` (clamped to ``[0, 1e4]``, detached),
``w`` being the generator's last layer (:meth:`~AdversarialLoss.set_last_layer`). ``L_rec``
is the weighted total of the sum's terms without a discriminator: a
:class:`~losslab.losses.WeightedSum` evaluates those first and hands it over with
:meth:`~AdversarialLoss.set_reconstruction_loss`, so nothing is computed twice. A term called on
its own needs ``set_reconstruction_loss`` before each call, or a sum linked by
:func:`adversarial_terms` (whose other terms it then evaluates itself).

Feature matching (``feature_matching``, pix2pixHD) shares the discriminator of the adversarial
term in the same sum: :func:`link_feature_matching` (called by :func:`adversarial_terms`) links
them. Without an adversarial partner it keeps a discriminator of its own (an internal
:class:`AdversarialLoss`, listed by :func:`adversarial_terms` so its D gets trained).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.core.distributed import mean_across_processes
from losslab.core.validation import check_choice, check_flag, check_number, check_pair
from losslab.losses.base import Loss, WeightedSum, _uses_discriminator
from losslab.losses.registry import register_loss
from losslab.models.discriminators import build_discriminator

#: Largest first-layer width of a discriminator (64 is usual; 99999999 would only fail in the
#: allocator with an unreadable message).
MAX_WIDTH = 4096

Objective = Literal["vanilla", "lsgan", "hinge", "relativistic"]
OBJECTIVES: tuple[str, ...] = ("vanilla", "lsgan", "hinge", "relativistic")
_DISCS = ("patch", "patch_sn", "multiscale", "multiscale_sn", "unet_sn")
#: Smoothing of the running D accuracy that drives ``adaptive_d`` (about a 10-update window).
D_ACCURACY_SMOOTHING = 0.9


class DiscriminatorCollapseWarning(RuntimeWarning):
    """The discriminator separates real and generated images perfectly for many steps."""


# -- objectives as pure functions of logits ---------------------------------------------------
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

    Shape: logits of any (equal or not) shapes; output scalar.
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
    ``fake - E[real]`` at 0. Returns a scalar in ``[0, 1]``.
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
    over ``(C, H, W)`` and averaged over the batch. ``real_images`` must have had
    ``requires_grad`` set before ``real_logits`` were computed from it; the result is
    differentiable w.r.t. D's parameters (``create_graph=True``).
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

    ``w`` is the generator's last layer weight; both losses must be graph-connected to it (the
    graphs are retained for the later backward). Balances the adversarial gradient against the
    reconstruction gradient where they meet the output.
    """
    rec_grad, g_grad = (
        torch.autograd.grad(value, last_layer, retain_graph=True, allow_unused=True)[0]
        for value in (reconstruction_loss, generator_loss)
    )
    if g_grad is None or rec_grad is None:
        which = "generator" if g_grad is None else "reconstruction"
        raise ValueError(
            f"the {which} loss does not depend on the given last layer; pass the generator's "
            "final layer weight to set_last_layer (e.g. model.head.weight)."
        )
    weight = rec_grad.norm() / (g_grad.norm() + eps)
    return weight.clamp(0.0, max_weight).detach()


def feature_matching_loss(fake_features: Sequence[Tensor], real_features: Sequence[Tensor]) -> Tensor:
    """pix2pixHD feature matching: mean over layers of the mean L1 between feature maps.

    ``real_features`` are treated as constants (detached).
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


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Switch ``requires_grad`` off for ``module``'s parameters inside the block, then restore."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


# -- the loss term ----------------------------------------------------------------------------
@register_loss("adversarial", positional=("objective",), aliases=("gan",))
class AdversarialLoss(Loss):
    """Adversarial loss with a PatchGAN discriminator it trains itself (pix2pix/VQGAN style).

    Returns the generator's loss (D frozen); :meth:`discriminator_step` updates D. See the
    module docstring for the training loop.

    Args:
        objective: ``'vanilla'`` (non-saturating BCE), ``'lsgan'``, ``'hinge'`` (default, as in
            VQGAN) or ``'relativistic'`` (relativistic average, ESRGAN; uses the targets in the
            generator loss too).
        disc: ``'patch'`` (PatchGAN, instance norm), ``'patch_sn'`` (spectral norm, no other
            norm), ``'multiscale'`` / ``'multiscale_sn'`` (the patch D at ``scales`` image scales,
            pix2pixHD; the objective is averaged over scales) or ``'unet_sn'`` (U-Net with
            spectral norm and a logit per pixel, Real-ESRGAN). Each has a conditional form
            (``conditional=true``).
        conditional: judge ``(image, condition)`` pairs; the condition is the model's input.
        condition_channels: channels of the condition (``3 * T`` for ``T`` stacked frames);
            ``None`` infers them at the first call (pass it to build D up front, e.g. for DDP).
        channels: channels of the judged images.
        width, depth: D's first-layer width and number of stride-2 blocks (images must be at
            least ``3 * 2^depth`` pixels for ``patch``, ``3 * 2^depth * 2^(scales - 1)`` for
            ``multiscale``, ``2^depth`` for ``unet_sn``).
        scales: image scales of ``multiscale`` (2-3 in pix2pixHD); ignored by the others.
        norm: D's normalisation; ``'auto'`` is instance norm for ``patch`` and none for
            ``patch_sn``; or ``'instance'``, ``'batch'``, ``'none'``.
        start: training step at which the term switches on; before it the loss is a
            graph-connected zero and :meth:`discriminator_step` does nothing.
        r1: R1 penalty weight ``gamma`` (``gamma / 2 * E||grad_x D(x_real)||^2``); 0 disables it.
        adaptive: multiply the generator loss by VQGAN's adaptive weight (needs
            :meth:`set_last_layer`).
        d_steps: discriminator updates per :meth:`discriminator_step` call.
        adaptive_d: adapt the number of D updates to D's running accuracy ``a`` (mean fraction
            of correctly classified real and fake logits, smoothed over about 10 updates,
            :data:`D_ACCURACY_SMOOTHING`): ``a > d_high`` -> no update this step (D wins
            outright: its gradient tells the generator little, and more D steps make it
            worse); ``a < d_low`` -> ``d_steps + 1`` updates (D is near chance and gives no
            signal); otherwise ``d_steps``. Accuracy rather than the loss, because it is
            bounded and means the same for every objective (0.5 = chance).
        d_low, d_high: the accuracy band of ``adaptive_d``, ``0 <= d_low < d_high <= 1``.
        lr_d: D's Adam learning rate.
        betas: D's Adam betas.
        collapse_steps: warn once when D's accuracy has been exactly 1 for this many
            consecutive updates.

    Shape:
        - prediction, target: ``(N, channels, H, W)`` in ``input_range``; condition ``(N, C, h,
          w)`` or ``(N, T, C, h, w)`` (any ``h, w``), same range.
        - output: scalar.
    """

    is_adversarial: ClassVar[bool] = True
    uses_condition: ClassVar[bool] = True

    def __init__(
        self,
        objective: Objective = "hinge",
        disc: str = "patch",
        conditional: bool = False,
        condition_channels: int | None = None,
        channels: int = 3,
        width: int = 64,
        depth: int = 3,
        norm: str | None = "auto",
        start: int = 0,
        r1: float = 0.0,
        adaptive: bool = False,
        d_steps: int = 1,
        lr_d: float = 2e-4,
        betas: Sequence[float] = (0.5, 0.999),
        collapse_steps: int = 200,
        scales: int = 2,
        adaptive_d: bool = False,
        d_low: float = 0.6,
        d_high: float = 0.9,
        *,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(input_range=input_range, check_values=check_values)
        self.objective: Objective = check_choice("objective", objective, OBJECTIVES)  # type: ignore[assignment]
        self.disc = check_choice("disc", disc, _DISCS)
        norm = "none" if norm is None else norm
        norm = check_choice("norm", norm, ("auto", "instance", "batch", "none"))
        self.norm = ("none" if disc.endswith("_sn") else "instance") if norm == "auto" else norm
        for name, value, low in (("channels", channels, 1), ("width", width, 1), ("depth", depth, 1),
                                 ("start", start, 0), ("d_steps", d_steps, 1),
                                 ("collapse_steps", collapse_steps, 1), ("scales", scales, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
        if condition_channels is not None and (
            not isinstance(condition_channels, int) or condition_channels < 1
        ):
            raise ValueError(f"condition_channels must be a positive integer or None; got {condition_channels!r}.")
        if not (math.isfinite(r1) and r1 >= 0):
            raise ValueError(f"r1 (the R1 penalty weight gamma) must be >= 0; got {r1}.")
        check_number("lr_d", lr_d, low=0.0, low_open=True, example="2e-4")
        if not 0.0 <= d_low < d_high <= 1.0:
            raise ValueError(f"adaptive_d needs 0 <= d_low < d_high <= 1 (D accuracies); got "
                             f"d_low={d_low}, d_high={d_high}, e.g. d_low=0.6, d_high=0.9.")
        betas = tuple(float(b) for b in betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), e.g. (0.5, 0.999); got {betas}.")
        if width > MAX_WIDTH:  # an absurd width would otherwise fail in the allocator
            raise ValueError(f"width must be at most {MAX_WIDTH} (D's first-layer channels; 64 is "
                             f"usual); got {width}.")
        self.conditional = check_flag("conditional", conditional)  # 'none' must not mean on
        self.channels, self.width, self.depth = channels, width, depth
        self.start, self.r1, self.adaptive = start, float(r1), check_flag("adaptive", adaptive)
        self.d_steps, self.lr_d, self.betas = d_steps, float(lr_d), betas
        self.collapse_steps = collapse_steps
        self.scales = scales
        self.adaptive_d, self.d_low, self.d_high = check_flag("adaptive_d", adaptive_d), float(d_low), float(d_high)
        self.min_size = {"multiscale": 3 * 2**depth * 2 ** (scales - 1),
                         "unet": 2**depth}.get(disc.removesuffix("_sn"), 3 * 2**depth)
        #: Running (smoothed) D accuracy for ``adaptive_d``; ``None`` before the first update.
        self.d_accuracy: float | None = None
        self.step = 0
        self.register_module("discriminator", None)
        self._optimizer: torch.optim.Adam | None = None
        self._last: dict[str, Tensor | float] = {}
        self._last_adaptive: Tensor | None = None
        self._reconstruction_loss: Tensor | None = None
        self._pinned_steps = 0
        self._collapse_warned = False
        object.__setattr__(self, "_last_layer", None)
        object.__setattr__(self, "_linked_sum", None)
        if not self.conditional or condition_channels is not None:
            self._build(condition_channels)

    # -- construction ---------------------------------------------------------------------
    def _build(self, condition_channels: int | None, device: torch.device | None = None) -> None:
        options: dict[str, Any] = {"width": self.width, "depth": self.depth}
        if self.disc != "unet_sn":
            options["norm"] = self.norm
        if self.disc.startswith("multiscale"):
            options["scales"] = self.scales
        name = self.disc
        if self.conditional:
            name = f"conditional_{name}"
            options.update(image_channels=self.channels, condition_channels=condition_channels)
        else:
            options["in_channels"] = self.channels
        disc = build_discriminator(name, **options)
        if device is not None:
            disc = disc.to(device)
        self.discriminator = disc
        self._optimizer = torch.optim.Adam(disc.parameters(), lr=self.lr_d, betas=self.betas)

    def _discriminator_for(self, condition: Tensor | None, like: Tensor) -> nn.Module:
        if self.discriminator is None:
            if condition is None:
                raise ValueError(
                    "this adversarial term is conditional but got no condition: pass the model's "
                    "input as condition (criterion(prediction, target, condition)) or build it "
                    "with conditional=false."
                )
            channels = condition.shape[1] * (condition.shape[2] if condition.dim() == 5 else 1)
            self._build(channels, like.device)
        return self.discriminator

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # A lazily built conditional D is created from the checkpoint's first-layer shape.
        if self.discriminator is None:
            first = {"unet": "stem.", "multiscale": "discriminators.0.blocks.0.0."}.get(
                self.disc.removesuffix("_sn"), "blocks.0.0.")
            for suffix in ("weight", "parametrizations.weight.original"):
                key = f"{prefix}discriminator.{first}{suffix}"
                if key in state_dict:
                    in_channels = state_dict[key].shape[1]
                    self._build(in_channels - self.channels, state_dict[key].device)
                    break
        super()._load_from_state_dict(state_dict, prefix, *args)

    # -- trainer-facing state -------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether the term is on at the current step (``step >= start``)."""
        return self.step >= self.start

    def set_step(self, step: int) -> None:
        """Set the training step (the term also advances it by one per discriminator_step)."""
        self.step = int(step)

    def set_last_layer(self, parameter: Tensor) -> None:
        """The generator's last layer weight, for the adaptive weight (kept as a reference)."""
        if not isinstance(parameter, Tensor) or not parameter.requires_grad:
            raise TypeError(
                "set_last_layer needs the generator's final layer weight (a Parameter with "
                f"requires_grad=True), e.g. model.head.weight; got {type(parameter).__name__}."
            )
        object.__setattr__(self, "_last_layer", parameter)

    def set_reconstruction_loss(self, value: Tensor | None) -> None:
        """The graph-connected reconstruction total for the *next* call's adaptive weight."""
        self._reconstruction_loss = value

    def link(self, weighted_sum: WeightedSum | None) -> None:
        """Remember the sum this term belongs to (for the adaptive weight's reconstruction)."""
        object.__setattr__(self, "_linked_sum", weighted_sum)

    @property
    def last_logs(self) -> dict[str, float]:
        """Logs of the last generator call: ``g_loss`` (before the adaptive weight),
        ``adaptive_weight`` (1 when off), ``active`` (0/1). Reading them syncs the device."""
        return {key: float(value) for key, value in self._last.items()}

    @property
    def optimizer(self) -> torch.optim.Adam | None:
        """D's Adam optimizer (``None`` until a lazily built D exists)."""
        return self._optimizer

    def optimizer_state_dict(self) -> dict[str, Any]:
        """D's optimizer state for checkpoints (``{}`` while D is not built)."""
        return self._optimizer.state_dict() if self._optimizer is not None else {}

    def load_optimizer_state_dict(self, state: dict[str, Any]) -> None:
        """Restore D's optimizer (load the module's ``state_dict`` first for a lazy D)."""
        if not state:
            return
        if self._optimizer is None:
            raise ValueError(
                "the discriminator is not built yet (conditional, channels unknown): load the "
                "loss's state_dict first, or pass condition_channels when building the term."
            )
        self._optimizer.load_state_dict(state)

    # -- discriminator plumbing -----------------------------------------------------------
    def _to_disc_range(self, images: Tensor) -> Tensor:
        return self.to_unit_range(images) * 2.0 - 1.0

    def _run(self, disc: nn.Module, images: Tensor, condition: Tensor | None
             ) -> tuple[list[Tensor], list[Tensor]]:
        """``(logit maps, one per scale; features)`` of D on ``images`` (and the condition)."""
        if disc.conditional:
            logits, features = disc.forward_features(images, condition)
        else:
            logits, features = disc.forward_features(images)
        return (logits if isinstance(logits, list) else [logits]), features

    def _condition(self, condition: Tensor | None) -> Tensor | None:
        if not self.conditional or condition is None:
            return None
        return self._to_disc_range(condition)

    def discriminator_features(
        self, prediction: Tensor, target: Tensor, condition: Tensor | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """D's features of ``prediction`` (D frozen, graph kept) and ``target`` (no grad)."""
        disc = self._discriminator_for(condition if self.conditional else None, prediction)
        cond = self._condition(condition)
        with frozen(disc):
            _, fake = self._run(disc, self._to_disc_range(prediction), cond)
            with torch.no_grad():
                _, real = self._run(disc, self._to_disc_range(target), cond)
        return fake, real

    # -- generator side -------------------------------------------------------------------
    def evaluate(self, prediction: Tensor, target: Tensor, condition: Tensor | None = None) -> Tensor:
        if not self.active:
            zero = prediction.sum() * 0.0
            self._last = {"g_loss": 0.0, "adaptive_weight": 0.0, "active": 0.0}
            return zero
        disc = self._discriminator_for(condition if self.conditional else None, prediction)
        cond = self._condition(condition)
        with frozen(disc):
            fake_logits, _ = self._run(disc, self._to_disc_range(prediction), cond)
            real_logits = None
            if self.objective == "relativistic":
                with torch.no_grad():
                    real_logits, _ = self._run(disc, self._to_disc_range(target), cond)
        g_loss = _scale_mean([generator_loss(fake, real, self.objective) for fake, real
                              in zip(fake_logits, real_logits or [None] * len(fake_logits),
                                     strict=True)])
        weight = self._adaptive(g_loss, prediction, target, condition) if self.adaptive else None
        value = g_loss if weight is None else g_loss * weight
        if self._values_checked() and not bool(torch.isfinite(value)):
            raise FloatingPointError(
                f"adversarial generator loss is {float(value)} (objective {self.objective!r}, step "
                f"{self.step}): training diverged. Resume from the last good checkpoint with a lower "
                "learning rate, r1 > 0, or disc=patch_sn."
            )
        self._last = {
            "g_loss": g_loss.detach(),
            "adaptive_weight": 1.0 if weight is None else weight,
            "active": 1.0,
        }
        return value

    def _adaptive(self, g_loss: Tensor, prediction: Tensor, target: Tensor,
                  condition: Tensor | None) -> Tensor:
        reconstruction, self._reconstruction_loss = self._reconstruction_loss, None
        last_layer = self.__dict__["_last_layer"]
        if not (torch.is_grad_enabled() and g_loss.requires_grad):  # evaluation: reuse the last
            return self._last_adaptive if self._last_adaptive is not None else g_loss.new_tensor(1.0)
        if last_layer is None:
            raise ValueError(
                "adaptive=true needs the generator's last layer: call "
                "term.set_last_layer(model.<final layer>.weight) once before training."
            )
        if reconstruction is None:
            reconstruction = self._linked_reconstruction(prediction, target, condition)
        weight = adaptive_weight(reconstruction, g_loss, last_layer)
        self._last_adaptive = weight
        return weight

    def _linked_reconstruction(self, prediction: Tensor, target: Tensor,
                               condition: Tensor | None) -> Tensor:
        linked = self.__dict__["_linked_sum"]
        if linked is None:
            raise ValueError(
                "adaptive=true needs the reconstruction loss: call "
                "losslab.losses.adversarial_terms(criterion) once (links the term to its sum), or "
                "term.set_reconstruction_loss(rec_total) before each call."
            )
        total: Tensor | None = None
        for term, weight, schedule in zip(linked.terms, linked.weights, linked.schedules, strict=True):
            factor = weight * schedule.factor(linked.step)
            if _uses_discriminator(term) or factor == 0.0:
                continue
            value = term.evaluate(prediction, target, condition if term.uses_condition else None)
            total = value * factor if total is None else total + value * factor
        if total is None:
            raise ValueError(
                "adaptive=true needs a reconstruction term (e.g. l1) in the same sum; none is active."
            )
        return total

    # -- discriminator side ---------------------------------------------------------------
    def discriminator_step(
        self, prediction: Tensor, target: Tensor, condition: Tensor | None = None
    ) -> dict[str, float]:
        """Update D on ``(target: real, prediction.detach(): fake)``: ``d_steps`` times, or as
        many as ``adaptive_d`` decides (0, ``d_steps`` or ``d_steps + 1``).

        Returns the mean over the updates of ``d_loss`` (objective + R1, averaged over scales),
        ``r1``, ``real_logit`` and ``fake_logit`` (mean logits), ``d_accuracy`` (see
        :func:`discriminator_accuracy`), plus ``d_updates`` (how many were made) and
        ``d_accuracy_running`` (the smoothed accuracy ``adaptive_d`` reads); an empty dict
        before ``start``. A skipped update still measures D (no gradient) so the running
        accuracy can fall and updates resume. Advances :attr:`step` by one. Raises
        ``FloatingPointError`` (before stepping) when the D loss is NaN/Inf, and warns once with
        :class:`DiscriminatorCollapseWarning` when D's accuracy stays at 1 for ``collapse_steps``
        consecutive updates.
        """
        if not self.active:
            self.step += 1
            return {}
        check_pair(prediction, target, channels=self.channels, min_size=self.min_size)
        disc = self._discriminator_for(condition if self.conditional else None, prediction)
        optimizer = self._optimizer
        if optimizer is None:  # pragma: no cover - built together with the discriminator
            raise RuntimeError("the discriminator exists but its optimizer does not.")
        fake = self._to_disc_range(prediction.detach())
        real = self._to_disc_range(target.detach())
        cond = self._condition(condition.detach() if condition is not None else None)
        updates = self.planned_updates()
        totals: dict[str, float] = {}
        for _ in range(max(updates, 1)):
            optimizer.zero_grad(set_to_none=True)
            with contextlib.nullcontext() if updates else torch.no_grad():
                total, logs = self._discriminator_loss(disc, real, fake, cond, r1=updates > 0)
            self._update_running_accuracy(logs["d_accuracy"])
            if updates:
                total.backward()
                _average_gradients_across_processes(disc)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                self._track_collapse(logs["d_accuracy"])
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value / max(updates, 1)
        self.step += 1
        totals["d_updates"] = float(updates)
        totals["d_accuracy_running"] = float(self.d_accuracy or 0.0)
        return totals

    def planned_updates(self) -> int:
        """D updates for this step: ``d_steps``, or the ``adaptive_d`` rule (see the class)."""
        if not self.adaptive_d or self.d_accuracy is None:
            return self.d_steps
        if self.d_accuracy > self.d_high:
            return 0
        if self.d_accuracy < self.d_low:
            return self.d_steps + 1
        return self.d_steps

    def _update_running_accuracy(self, accuracy: float) -> None:
        # Under DDP every process must take the same number of D updates (they all-reduce D's
        # gradients), so the accuracy that decides it is averaged over processes first.
        accuracy = _mean_across_processes(accuracy)
        previous = self.d_accuracy
        self.d_accuracy = accuracy if previous is None else (
            D_ACCURACY_SMOOTHING * previous + (1.0 - D_ACCURACY_SMOOTHING) * accuracy)

    def _discriminator_loss(self, disc: nn.Module, real: Tensor, fake: Tensor,
                            cond: Tensor | None, *, r1: bool) -> tuple[Tensor, dict[str, float]]:
        """D's loss (objective averaged over scales, + R1) and its float logs; raises on NaN."""
        use_r1 = r1 and self.r1 > 0
        real_input = real.detach().requires_grad_(True) if use_r1 else real
        real_logits, _ = self._run(disc, real_input, cond)
        fake_logits, _ = self._run(disc, fake, cond)
        pairs = list(zip(real_logits, fake_logits, strict=True))
        d_loss = _scale_mean([discriminator_loss(r, f, self.objective) for r, f in pairs])
        penalty = (r1_penalty(torch.stack([r.sum() for r in real_logits]).sum(), real_input,
                              self.r1) if use_r1 else None)
        total = d_loss if penalty is None else d_loss + penalty
        accuracy = _scale_mean([discriminator_accuracy(r.detach(), f.detach(), self.objective)
                                for r, f in pairs])
        logs = {
            "d_loss": float(total.detach()),
            "r1": float(penalty.detach()) if penalty is not None else 0.0,
            "real_logit": float(_scale_mean([r.detach().mean() for r in real_logits])),
            "fake_logit": float(_scale_mean([f.detach().mean() for f in fake_logits])),
            "d_accuracy": float(accuracy),
        }
        if not math.isfinite(logs["d_loss"]):
            raise FloatingPointError(
                f"discriminator loss is {logs['d_loss']} at step {self.step} (objective "
                f"{self.objective!r}, real logit {logs['real_logit']:.4g}, fake logit "
                f"{logs['fake_logit']:.4g}): training diverged. Resume from the last good "
                "checkpoint with a lower lr_d, r1 > 0, or disc=patch_sn."
            )
        return total, logs

    def _track_collapse(self, accuracy: float) -> None:
        self._pinned_steps = self._pinned_steps + 1 if accuracy >= 1.0 else 0
        if self._pinned_steps >= self.collapse_steps and not self._collapse_warned:
            self._collapse_warned = True
            warnings.warn(
                f"the discriminator has classified every real and generated patch correctly for "
                f"{self._pinned_steps} consecutive updates (step {self.step}): it is winning "
                "outright, so its gradient tells the generator little and training may collapse "
                "or stall. Try a lower lr_d, an R1 penalty (r1=10), spectral norm "
                "(disc=patch_sn), or a later start.",
                DiscriminatorCollapseWarning,
                stacklevel=3,
            )


def _scale_mean(values: Sequence[Tensor]) -> Tensor:
    """Mean of per-scale values (one scale: the value itself)."""
    return values[0] if len(values) == 1 else torch.stack(list(values)).mean()


def _mean_across_processes(value: float) -> float:
    """``value`` averaged over ``torch.distributed`` processes (itself when not distributed)."""
    return float(mean_across_processes(torch.tensor([value], dtype=torch.float64))[0])


def _average_gradients_across_processes(module: nn.Module) -> None:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    if world == 1:
        return
    for parameter in module.parameters():
        if parameter.grad is not None:
            torch.distributed.all_reduce(parameter.grad)
            parameter.grad /= world




# -- feature matching -------------------------------------------------------------------------
@register_loss("feature_matching", aliases=("fm",))
class FeatureMatchingLoss(Loss):
    """Feature matching (pix2pixHD): L1 between D's features of prediction and target.

    Mean over D's ``depth + 1`` feature maps of the mean absolute difference; target features
    are constants. Where the discriminator comes from:

    - **shared** (preferred): in a sum with an adversarial term, :func:`adversarial_terms` (or
      :func:`link_feature_matching`) links this term to that term's discriminator and drops its
      own, so D's weights are stored and trained once;
    - **standalone**: otherwise it keeps its own :class:`AdversarialLoss` (:attr:`adversary`,
      built from the parameters below) whose D is trained by that adversary's
      ``discriminator_step``; :func:`adversarial_terms` lists it, so the usual loop trains it.

    Before the discriminator's ``start`` step the value is a graph-connected zero.

    Args:
        objective, disc, conditional, condition_channels, channels, width, depth, norm, start,
            r1, d_steps, lr_d: of the standalone discriminator (see :class:`AdversarialLoss`);
            ignored once linked.

    Shape: prediction, target ``(N, C, H, W)`` in ``input_range``; output scalar.
    """

    uses_condition: ClassVar[bool] = True
    uses_discriminator: ClassVar[bool] = True

    def __init__(
        self,
        objective: Objective = "hinge",
        disc: str = "patch",
        conditional: bool = False,
        condition_channels: int | None = None,
        width: int = 64,
        depth: int = 3,
        start: int = 0,
        r1: float = 0.0,
        lr_d: float = 2e-4,
        channels: int = 3,
        norm: str | None = "auto",
        d_steps: int = 1,
        *,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(input_range=input_range, check_values=check_values)
        self.adversary: AdversarialLoss | None = AdversarialLoss(
            objective, disc, conditional, condition_channels, channels=channels, width=width,
            depth=depth, norm=norm, start=start, r1=r1, d_steps=d_steps, lr_d=lr_d,
            input_range=input_range, check_values=check_values,
        )
        self.min_size = self.adversary.min_size
        object.__setattr__(self, "_partner", None)

    def set_input_range(self, input_range: Iterable[float]) -> FeatureMatchingLoss:
        super().set_input_range(input_range)
        if self.adversary is not None:
            self.adversary.set_input_range(input_range)
        return self

    @property
    def partner(self) -> AdversarialLoss | None:
        """The adversarial term whose discriminator supplies the features (shared or own)."""
        return self.__dict__["_partner"] or self.adversary

    def link(self, partner: AdversarialLoss) -> None:
        """Use ``partner``'s discriminator (kept as a reference) and drop this term's own."""
        if not isinstance(partner, AdversarialLoss):
            raise TypeError(f"feature matching links to an AdversarialLoss; got {type(partner).__name__}.")
        object.__setattr__(self, "_partner", partner)
        self.adversary = None
        self.min_size = partner.min_size

    def evaluate(self, prediction: Tensor, target: Tensor, condition: Tensor | None = None) -> Tensor:
        partner = self.partner
        if partner is None:  # pragma: no cover - an own adversary exists until linked
            raise RuntimeError("feature matching has no discriminator.")
        if not partner.active:
            return prediction.sum() * 0.0
        fake, real = partner.discriminator_features(prediction, target, condition)
        return feature_matching_loss(fake, real)


# -- finding and linking terms ----------------------------------------------------------------
def link_feature_matching(loss: nn.Module) -> int:
    """Link feature-matching terms in ``loss`` to an adversarial term's D; returns how many.

    A term takes the first adversarial term of its own sum, else the first one anywhere in
    ``loss``; without any, it keeps its own discriminator (standalone).
    """
    owned = {id(m.adversary) for m in loss.modules() if isinstance(m, FeatureMatchingLoss)}
    everywhere = [m for m in loss.modules() if isinstance(m, AdversarialLoss) and id(m) not in owned]
    owners: dict[int, AdversarialLoss] = {}
    for module in loss.modules():
        if isinstance(module, WeightedSum):
            local = [t for t in module.terms if isinstance(t, AdversarialLoss)]
            for term in module.terms:
                if isinstance(term, FeatureMatchingLoss) and local:
                    owners.setdefault(id(term), local[0])
    linked = 0
    for module in list(loss.modules()):
        if isinstance(module, FeatureMatchingLoss):
            partner = owners.get(id(module)) or (everywhere[0] if everywhere else None)
            if partner is not None:
                module.link(partner)
                linked += 1
    return linked


def adversarial_terms(loss: nn.Module) -> list[AdversarialLoss]:
    """Every adversarial term inside ``loss`` (itself included), with helpers linked.

    Also links feature-matching terms to their discriminator and adaptive terms to their sum
    (idempotent; call it once after building the criterion, before building optimisers or
    wrapping in DDP: linking drops a feature-matching term's own discriminator). A standalone
    feature-matching term's own adversary is listed too, so the loop trains its D.
    """
    link_feature_matching(loss)
    for module in loss.modules():
        if isinstance(module, WeightedSum):
            for term in module.terms:
                if isinstance(term, AdversarialLoss):
                    term.link(module)
    return [m for m in loss.modules() if isinstance(m, AdversarialLoss)]
