"""The adversarial loss term: the generator's side of a GAN, with a slot for its discriminator.

A pixel loss rewards the *average* of the plausible answers (blur); an adversarial term rewards
outputs a discriminator ``D`` cannot tell from real images (sharp, but free to differ from the
target in detail). :class:`AdversarialLoss` is a normal term of a spec
(``l1 + 0.01*adversarial(disc=multiscale_sn, r1=10)``). It holds

- the objective and its options (validated when the spec is built);
- the discriminator's *configuration* (``disc=`` name, width, depth, norm, scales, conditional)
  and the options of its training (``d_steps``, ``lr_d``, ``betas``, ``adaptive_d``, ...), read
  by the trainer;
- a slot for the discriminator (:attr:`AdversarialLoss.discriminator`, a submodule once
  attached, so ``state_dict()`` holds D's weights under the term).

Discriminators are models: ``losses`` does not build them. :mod:`losslab.train.adversarial`
builds D with :func:`losslab.models.build_discriminator` from this configuration, attaches it
(:meth:`AdversarialLoss.attach_discriminator`) together with its optimizer, and runs the D
step, which minimises :meth:`AdversarialLoss.discriminator_objective`.

Calling the term gives the *generator's* loss with D frozen (D's parameters have
``requires_grad`` switched off during the call, so the generator's backward leaves D's
``.grad`` untouched).

Ranges: the term receives images in its declared ``input_range`` (``[0, 1]`` by default), maps
them to ``[0, 1]`` like every loss, and feeds D ``2 * x - 1``, i.e. ``[-1, 1]``. A condition
(the model's input, for ``conditional=true``) is assumed to use the same range and is mapped the
same way.

Adaptive weight (``adaptive=true``, VQGAN): the generator loss is multiplied by
``lambda = ||grad_w L_rec|| / (||grad_w L_G|| + 1e-4)`` (clamped to ``[0, 1e4]``, detached).
Both inputs come in the :class:`~losslab.losses.context.LossContext`: ``last_layer`` (``w``, the
generator's last layer weight) and ``reconstruction`` (``L_rec``, graph-connected). Inside a
:class:`~losslab.losses.WeightedSum` the sum computes ``L_rec`` (the weighted total of its terms
without a discriminator) and sets it; the trainer passes the rest:
``criterion(prediction, target, LossContext(condition=inputs, last_layer=model.head.weight))``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from losslab.core.registry import Registry
from losslab.core.validation import check_choice, check_flag, check_number, check_pair
from losslab.losses.adversarial.objectives import (
    OBJECTIVES,
    Objective,
    adaptive_weight,
    discriminator_accuracy,
    discriminator_loss,
    generator_loss,
    r1_penalty,
    scale_mean,
)
from losslab.losses.base import Loss
from losslab.losses.context import LossContext, as_context
from losslab.losses.registry import register_loss

#: Largest first-layer width of a discriminator (64 is usual; 99999999 would only fail in the
#: allocator with an unreadable message).
MAX_WIDTH = 4096
#: Prefix of the registered conditional form of every discriminator (``conditional_patch``);
#: the spec selects it with ``conditional=true``, never through ``disc=``.
CONDITIONAL_PREFIX = "conditional_"


class DiscriminatorCollapseWarning(RuntimeWarning):
    """The discriminator separates real and generated images perfectly for many steps."""


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


#: The discriminator architectures ``disc=`` accepts, with what each is. ``losses`` may not
#: import ``models`` (siblings), so the spec checks names against this table and fails at the
#: value with the closest names; ``models.DISCRIMINATORS`` holds the classes, and a test
#: (tests/train/test_adversarial_step.py) asserts both tables name the same architectures.
DISCRIMINATOR_ARCHITECTURES: Registry[str] = Registry("discriminator")
for _name, _what in (
    ("patch", "PatchGAN, instance norm (pix2pix)"),
    ("patch_sn", "PatchGAN with spectral norm"),
    ("multiscale", "the PatchGAN at several image scales (pix2pixHD)"),
    ("multiscale_sn", "multi-scale PatchGAN with spectral norm"),
    ("unet_sn", "U-Net with spectral norm, a logit per pixel (Real-ESRGAN)"),
):
    DISCRIMINATOR_ARCHITECTURES.register(_name, _what)
del _name, _what


def _check_disc_name(disc: object) -> str:
    """``disc=`` names an architecture of :data:`DISCRIMINATOR_ARCHITECTURES`; the conditional
    form is selected with ``conditional=true``, not by name."""
    if not isinstance(disc, str) or not disc.strip():
        raise ValueError(f"disc must be a discriminator name such as 'patch' or 'multiscale_sn'; "
                         f"got {disc!r}.")
    if disc.startswith(CONDITIONAL_PREFIX):
        base = disc.removeprefix(CONDITIONAL_PREFIX)
        raise ValueError(f"disc={disc} names the conditional form; write disc={base}, "
                         "conditional=true.")
    return DISCRIMINATOR_ARCHITECTURES.canonical(disc)


@register_loss("adversarial", positional=("objective",), aliases=("gan",))
class AdversarialLoss(Loss):
    """Adversarial loss of the generator against a discriminator trained alongside it.

    Returns the generator's loss (D frozen); the trainer updates D by minimising
    :meth:`discriminator_objective` (see :mod:`losslab.train.adversarial`, which also builds D
    from the options below and attaches it).

    Args:
        objective: ``'vanilla'`` (non-saturating BCE), ``'lsgan'``, ``'hinge'`` (default, as in
            VQGAN) or ``'relativistic'`` (relativistic average, ESRGAN; uses the targets in the
            generator loss too).
        disc: ``'patch'`` (PatchGAN, instance norm), ``'patch_sn'`` (spectral norm, no other
            norm), ``'multiscale'`` / ``'multiscale_sn'`` (the patch D at ``scales`` image scales,
            pix2pixHD; the objective is averaged over scales) or ``'unet_sn'`` (U-Net with
            spectral norm and a logit per pixel, Real-ESRGAN); see
            :data:`DISCRIMINATOR_ARCHITECTURES`. Each has a conditional form
            (``conditional=true``).
        conditional: judge ``(image, condition)`` pairs; the condition is the model's input.
        condition_channels: channels of the condition (``3 * T`` for ``T`` stacked frames);
            ``None``: the trainer reads them from an example input when it builds D.
        channels: channels of the judged images.
        width, depth: D's first-layer width and number of stride-2 blocks (images must be at
            least ``3 * 2^depth`` pixels for ``patch``, ``3 * 2^depth * 2^(scales - 1)`` for
            ``multiscale``, ``2^depth`` for ``unet_sn``: the attached D's ``min_size``).
        scales: image scales of ``multiscale`` (2-3 in pix2pixHD); ignored by the others.
        norm: D's normalisation; ``'auto'`` is instance norm, none for the ``*_sn``
            discriminators; or ``'instance'``, ``'batch'``, ``'none'``.
        start: training step at which the term switches on; before it the loss is a
            graph-connected zero and the D step does nothing.
        r1: R1 penalty weight ``gamma`` (``gamma / 2 * E||grad_x D(x_real)||^2``); 0 disables it.
        adaptive: multiply the generator loss by VQGAN's adaptive weight (needs the
            ``last_layer`` and ``reconstruction`` call arguments; a sum passes the latter).
        d_steps: discriminator updates per training step.
        adaptive_d: adapt the number of D updates to D's running accuracy ``a`` (mean fraction
            of correctly classified real and fake logits, smoothed over about 10 updates):
            ``a > d_high`` -> no update this step (D wins outright: its gradient tells the
            generator little, and more D steps make it worse); ``a < d_low`` -> ``d_steps + 1``
            updates (D is near chance and gives no signal); otherwise ``d_steps``. Accuracy
            rather than the loss, because it is bounded and means the same for every objective
            (0.5 = chance).
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

    judged_by_discriminator: ClassVar[bool] = True
    uses_condition: ClassVar[bool] = True
    uses_reconstruction: ClassVar[bool] = True

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
        self.disc = _check_disc_name(disc)
        norm = "none" if norm is None else norm
        norm = check_choice("norm", norm, ("auto", "instance", "batch", "none"))
        self.norm = ("none" if disc.endswith("_sn") else "instance") if norm == "auto" else norm
        for name, value, low in (("channels", channels, 1), ("width", width, 1), ("depth", depth, 1),
                                 ("start", start, 0), ("d_steps", d_steps, 1),
                                 ("collapse_steps", collapse_steps, 1), ("scales", scales, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
        if condition_channels is not None and (
            isinstance(condition_channels, bool) or not isinstance(condition_channels, int)
            or condition_channels < 1
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
        self.condition_channels = condition_channels
        self.channels, self.width, self.depth, self.scales = channels, width, depth, scales
        self.start, self.r1, self.adaptive = start, float(r1), check_flag("adaptive", adaptive)
        self.d_steps, self.lr_d, self.betas = d_steps, float(lr_d), betas
        self.collapse_steps = collapse_steps
        self.adaptive_d, self.d_low, self.d_high = check_flag("adaptive_d", adaptive_d), float(d_low), float(d_high)
        self.step = 0
        self.register_module("discriminator", None)
        self._last: dict[str, Tensor | float] = {}
        self._last_adaptive: Tensor | None = None

    # -- the discriminator slot -----------------------------------------------------------
    @property
    def discriminator_name(self) -> str:
        """The registered discriminator this term asks for: ``disc``, or its conditional form."""
        return f"{CONDITIONAL_PREFIX}{self.disc}" if self.conditional else self.disc

    def attach_discriminator(self, discriminator: nn.Module) -> None:
        """Make ``discriminator`` this term's D (a submodule: its weights join ``state_dict``).

        It must have ``forward_features(x[, condition]) -> (logits, features)`` and a
        ``conditional`` flag equal to the term's (see :mod:`losslab.models.discriminators`).
        """
        if not isinstance(discriminator, nn.Module) or not hasattr(discriminator, "forward_features"):
            raise TypeError(
                "attach_discriminator needs a discriminator module with forward_features "
                f"(see losslab.models.build_discriminator); got {type(discriminator).__name__}."
            )
        if bool(getattr(discriminator, "conditional", False)) != self.conditional:
            kind = "conditional" if self.conditional else "unconditional"
            raise ValueError(
                f"this adversarial term is {kind} but the discriminator is not; build it with "
                f"build_discriminator({self.discriminator_name!r}, ...)."
            )
        self.discriminator = discriminator

    @property  # type: ignore[override]
    def min_size(self) -> int | None:  # type: ignore[override]
        """Smallest image side the attached D accepts (``None`` before one is attached)."""
        return getattr(self.discriminator, "min_size", None)

    def _attached(self) -> nn.Module:
        disc = self.discriminator
        if disc is None:
            raise ValueError(
                f"the adversarial term {self.term_name!r} has no discriminator yet: build and "
                "attach one with losslab.train.adversarial.attach_discriminators(criterion) "
                "(the trainer does this at setup), or term.attach_discriminator(module)."
            )
        return disc

    # -- trainer-facing state -------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether the term is on at the current step (``step >= start``)."""
        return self.step >= self.start

    def set_step(self, step: int) -> None:
        """Set the training step (the D step also advances it by one per call)."""
        self.step = int(step)

    @property
    def last_logs(self) -> dict[str, float]:
        """Logs of the last generator call: ``g_loss`` (before the adaptive weight),
        ``adaptive_weight`` (1 when off), ``active`` (0/1). Reading them syncs the device."""
        return {key: float(value) for key, value in self._last.items()}

    # -- feeding the discriminator --------------------------------------------------------
    def to_discriminator_range(self, images: Tensor) -> Tensor:
        """Images (or a condition) in ``input_range`` -> D's ``[-1, 1]``."""
        return self.to_unit_range(images) * 2.0 - 1.0

    def _condition(self, condition: Tensor | None) -> Tensor | None:
        if not self.conditional:
            return None
        if condition is None:
            raise ValueError(
                "this adversarial term is conditional but got no condition: pass the model's "
                "input, criterion(prediction, target, LossContext(condition=inputs)), or build "
                "it with conditional=false."
            )
        return self.to_discriminator_range(condition)

    def run_discriminator(self, images: Tensor, condition: Tensor | None = None
                          ) -> tuple[list[Tensor], list[Tensor]]:
        """``(logit maps, one per scale; features)`` of D on images already in ``[-1, 1]``
        (and a condition in ``[-1, 1]`` for a conditional D)."""
        disc = self._attached()
        if disc.conditional:
            logits, features = disc.forward_features(images, condition)
        else:
            logits, features = disc.forward_features(images)
        return (logits if isinstance(logits, list) else [logits]), features

    def discriminator_features(
        self, prediction: Tensor, target: Tensor, condition: Tensor | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """D's features of ``prediction`` (D frozen, graph kept) and ``target`` (no grad)."""
        disc = self._attached()
        cond = self._condition(condition)
        with frozen(disc):
            _, fake = self.run_discriminator(self.to_discriminator_range(prediction), cond)
            with torch.no_grad():
                _, real = self.run_discriminator(self.to_discriminator_range(target), cond)
        return fake, real

    # -- generator side -------------------------------------------------------------------
    def forward(self, prediction: Tensor, target: Tensor,
                context: LossContext | None = None) -> Tensor:
        """Generator loss for ``(N, C, H, W)`` images in ``input_range``.

        ``context`` (:class:`~losslab.losses.context.LossContext`): ``condition`` (the model's
        input, conditional terms only), ``reconstruction`` (the graph-connected reconstruction
        loss ``L_rec``) and ``last_layer`` (the generator's last layer weight ``w``), both for
        ``adaptive=true``. In a :class:`~losslab.losses.weighted_sum.WeightedSum` the sum sets
        ``reconstruction``.
        """
        self.validate(prediction, target)
        return self.evaluate(prediction, target, as_context(context))

    def evaluate(self, prediction: Tensor, target: Tensor,
                 context: LossContext | None = None) -> Tensor:
        context = as_context(context)
        if not self.active:
            self._last = {"g_loss": 0.0, "adaptive_weight": 0.0, "active": 0.0}
            return prediction.sum() * 0.0
        disc = self._attached()
        cond = self._condition(context.condition)
        with frozen(disc):
            fake_logits, _ = self.run_discriminator(self.to_discriminator_range(prediction), cond)
            real_logits = None
            if self.objective == "relativistic":
                with torch.no_grad():
                    real_logits, _ = self.run_discriminator(self.to_discriminator_range(target), cond)
        g_loss = scale_mean([generator_loss(fake, real, self.objective) for fake, real
                             in zip(fake_logits, real_logits or [None] * len(fake_logits),
                                    strict=True)])
        weight = (self._adaptive(g_loss, context.reconstruction, context.last_layer)
                  if self.adaptive else None)
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

    def _adaptive(self, g_loss: Tensor, reconstruction: Tensor | None,
                  last_layer: Tensor | None) -> Tensor:
        if not (torch.is_grad_enabled() and g_loss.requires_grad):  # evaluation: reuse the last
            return self._last_adaptive if self._last_adaptive is not None else g_loss.new_tensor(1.0)
        if last_layer is None:
            raise ValueError(
                "adaptive=true needs the generator's last layer: pass "
                "LossContext(last_layer=model.<final layer>.weight) (losslab's trainer does)."
            )
        if not isinstance(last_layer, Tensor) or not last_layer.requires_grad:
            raise TypeError(
                "last_layer must be the generator's final layer weight (a Parameter with "
                f"requires_grad=True), e.g. model.head.weight; got {type(last_layer).__name__}."
            )
        if reconstruction is None:
            raise ValueError(
                "adaptive=true needs the reconstruction loss: put a reconstruction term in the "
                "same sum (e.g. 'l1 + 0.1*adversarial(adaptive=true)'; the sum passes its total), "
                "or pass LossContext(reconstruction=<graph-connected loss tensor>)."
            )
        weight = adaptive_weight(reconstruction, g_loss, last_layer)
        self._last_adaptive = weight
        return weight

    # -- discriminator side ---------------------------------------------------------------
    def discriminator_objective(
        self, prediction: Tensor, target: Tensor, condition: Tensor | None = None, *,
        r1: bool = True,
    ) -> tuple[Tensor, dict[str, float]]:
        """What D minimises on ``(target: real, prediction: fake)``, both detached here.

        Returns ``(total, logs)``: ``total`` is the objective averaged over D's scales plus the
        R1 penalty (when ``r1`` and ``self.r1 > 0``), graph-connected to D's parameters;
        ``logs`` are floats: ``d_loss`` (= total), ``r1``, ``real_logit`` and ``fake_logit``
        (mean logits) and ``d_accuracy`` (:func:`discriminator_accuracy`, in ``[0, 1]``).
        Raises ``FloatingPointError`` when the D loss is NaN/Inf (before anything is updated).

        Shape: prediction, target ``(N, channels, H, W)`` in ``input_range``, ``H, W >=``
        :attr:`min_size`; condition as for the generator call.
        """
        check_pair(prediction, target, channels=self.channels, min_size=self.min_size)
        self._attached()
        fake = self.to_discriminator_range(prediction.detach())
        real = self.to_discriminator_range(target.detach())
        cond = self._condition(condition.detach() if condition is not None else None)
        use_r1 = r1 and self.r1 > 0
        real_input = real.detach().requires_grad_(True) if use_r1 else real
        real_logits, _ = self.run_discriminator(real_input, cond)
        fake_logits, _ = self.run_discriminator(fake, cond)
        pairs = list(zip(real_logits, fake_logits, strict=True))
        d_loss = scale_mean([discriminator_loss(r, f, self.objective) for r, f in pairs])
        penalty = (r1_penalty(torch.stack([r.sum() for r in real_logits]).sum(), real_input,
                              self.r1) if use_r1 else None)
        total = d_loss if penalty is None else d_loss + penalty
        accuracy = scale_mean([discriminator_accuracy(r.detach(), f.detach(), self.objective)
                               for r, f in pairs])
        logs = {
            "d_loss": float(total.detach()),
            "r1": float(penalty.detach()) if penalty is not None else 0.0,
            "real_logit": float(scale_mean([r.detach().mean() for r in real_logits])),
            "fake_logit": float(scale_mean([f.detach().mean() for f in fake_logits])),
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

