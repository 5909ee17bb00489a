"""The adversarial step: build each adversarial term's discriminator, attach it, and train it.

An adversarial term (:class:`~losslab.losses.AdversarialLoss`) is the generator's side of a GAN
and holds its discriminator's configuration; discriminators are models
(:func:`losslab.models.build_discriminator`). This module joins the two:
:func:`attach_discriminators` builds each term's D from its ``disc=`` options, attaches it to the
term (so D's weights sit in the criterion's ``state_dict``) and returns one
:class:`DiscriminatorTrainer` per term, which owns D's Adam optimizer and runs the D update(s):
``d_steps``, or ``adaptive_d``'s 0 / ``d_steps`` / ``d_steps + 1`` from D's running accuracy.

Use in your own PyTorch loop (D's parameters are not in ``model.parameters()``; build the
criterion, attach, then move it with ``criterion.to(device)``)::

    import torch, losslab
    from losslab.train.adversarial import attach_discriminators

    criterion = losslab.loss("l1 + 0.01*adversarial(objective=hinge)")
    discriminators = attach_discriminators(criterion)   # once: builds D and its optimizer
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    for inputs, targets in loader:
        prediction = model(inputs)
        loss = criterion(prediction, targets)   # l1 + 0.01 * generator loss (D frozen)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for d in discriminators:
            logs = d.step(prediction, targets)  # D update(s) -> floats

A conditional term (``conditional=true``) judges ``(image, model input)`` pairs: pass one batch
of inputs, ``attach_discriminators(criterion, condition=inputs)``, so D is built with the right
channels, and call ``criterion(prediction, targets, LossContext(condition=inputs))`` /
``d.step(prediction, targets, inputs)``. An adaptive term (``adaptive=true``) needs the
generator's last layer on every call: ``LossContext(last_layer=model[-2].weight)``.

Contract with the trainer (``docs/architecture.md``, "Adversarial terms"), per training step::

    for d in discriminators: d.term.set_step(global_step)   # gates the term before `start`
    loss = criterion(prediction, target, LossContext(condition, last_layer=w))  # D frozen inside
    manual_backward(loss); generator_optimizer.step()
    for d in discriminators:
        logs = d.step(prediction, target, condition)   # zero_grad / backward / step of D

Checkpoints: D's weights are in the criterion's ``state_dict()``; save ``d.optimizer`` and
``d.d_accuracy`` beside them (:class:`~losslab.train.module.TaskModule` does).

Gradients: the D step detaches the prediction, zeroes D's gradients before its backward and
sets them to ``None`` after its step, so no stale gradient reaches either optimiser. Under
``torch.distributed`` it averages D's gradients over processes itself, and the running accuracy
that ``adaptive_d`` reads is averaged over processes first, so every rank takes the same number
of updates; keep D's parameters out of the generator's DDP reducer (the trainer lists them in
``_ddp_params_and_buffers_to_ignore``).
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from losslab.core.distributed import mean_across_processes, world_size
from losslab.losses.adversarial import (
    AdversarialLoss,
    DiscriminatorCollapseWarning,
    adversarial_terms,
)
from losslab.models.discriminators import DISCRIMINATORS, discriminator_name

#: Smoothing of the running D accuracy that drives ``adaptive_d`` (about a 10-update window).
D_ACCURACY_SMOOTHING = 0.9


def check_discriminators(loss: nn.Module) -> list[AdversarialLoss]:
    """Every adversarial term of ``loss``, after checking that its ``disc=`` names a registered
    discriminator (with its conditional form when ``conditional=true``).

    Raises ``ValueError`` naming the term, e.g. ``adversarial term 'adversarial(disc=unet)':
    unknown discriminator 'unet'. Did you mean 'unet_sn'? Known discriminators: ...``. Cheap
    (nothing is built): call it where a spec is validated, before training starts.
    """
    terms = adversarial_terms(loss)
    for term in terms:
        try:
            discriminator_name(term.disc, conditional=term.conditional)
        except ValueError as error:
            raise ValueError(f"adversarial term {term.term_name!r}: {error}") from None
    return terms


def condition_channels(condition: Tensor) -> int:
    """Channels a conditional D sees for ``condition``: ``C`` of ``(N, C, h, w)``, ``T * C`` of
    a clip ``(N, T, C, h, w)`` (stacked frames)."""
    if not isinstance(condition, Tensor) or condition.dim() not in (4, 5):
        shape = tuple(condition.shape) if isinstance(condition, Tensor) else type(condition).__name__
        raise ValueError(f"condition must be (N, C, H, W) or a clip (N, T, C, H, W); got {shape}.")
    return condition.shape[1] * (condition.shape[2] if condition.dim() == 5 else 1)


def build_discriminator_for(term: AdversarialLoss, condition: Tensor | None = None) -> nn.Module:
    """The discriminator ``term`` asks for, built with :data:`losslab.models.DISCRIMINATORS`.

    Passes the term's ``width``, ``depth``, ``norm`` and ``scales`` where the architecture
    takes them (``scales`` only reaches ``multiscale``, ``norm`` not ``unet_sn``); a
    conditional D gets ``image_channels = channels`` and ``condition_channels`` (the term's, or
    read from an example ``condition``), an unconditional one ``in_channels = channels``.
    """
    name = discriminator_name(term.disc, conditional=term.conditional)
    cls, defaults = DISCRIMINATORS.get(name)
    accepted = inspect.signature(cls).parameters
    options: dict[str, Any] = {key: value for key, value in (
        ("width", term.width), ("depth", term.depth), ("norm", term.norm), ("scales", term.scales)
    ) if key in accepted}
    if term.conditional:
        channels = term.condition_channels
        if channels is None and condition is not None:
            channels = condition_channels(condition)
        if channels is None:
            raise ValueError(
                f"the conditional adversarial term {term.term_name!r} needs its condition's "
                "channels to build D: pass condition=<one batch of model inputs> to "
                "attach_discriminators, or condition_channels= in the spec."
            )
        options.update(image_channels=term.channels, condition_channels=channels)
    else:
        options["in_channels"] = term.channels
    return cls(**{**defaults, **options})


class DiscriminatorTrainer:
    """Trains one adversarial term's discriminator: Adam, ``d_steps`` / ``adaptive_d``, DDP.

    Args:
        term: the adversarial term; its D is built (:func:`build_discriminator_for`) and
            attached unless it already has one.
        condition: one batch of model inputs, for a conditional term's channel count.
        device: where a newly built D goes (default: the condition's device, else CPU).

    Attributes:
        optimizer: D's ``Adam(lr=term.lr_d, betas=term.betas)``.
        d_accuracy: running (smoothed) D accuracy in ``[0, 1]``; ``None`` before the first
            update. ``adaptive_d`` reads it; checkpoints store it.
    """

    def __init__(self, term: AdversarialLoss, *, condition: Tensor | None = None,
                 device: torch.device | str | None = None) -> None:
        if not isinstance(term, AdversarialLoss):
            raise TypeError(f"DiscriminatorTrainer trains an AdversarialLoss; got {type(term).__name__}.")
        if term.discriminator is None:
            disc = build_discriminator_for(term, condition)
            if device is None and condition is not None:
                device = condition.device
            term.attach_discriminator(disc.to(device) if device is not None else disc)
        self.term = term
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=term.lr_d,
                                          betas=term.betas)
        self.d_accuracy: float | None = None
        self._pinned_steps = 0
        self._collapse_warned = False

    @property
    def discriminator(self) -> nn.Module:
        """The term's discriminator."""
        return self.term.discriminator  # type: ignore[return-value]

    @property
    def name(self) -> str:
        """The term's name in logs (``adversarial(width=4,depth=1)``)."""
        return self.term.term_name

    def planned_updates(self) -> int:
        """D updates for this step: ``d_steps``, or the ``adaptive_d`` rule (0 above ``d_high``,
        ``d_steps + 1`` below ``d_low``, else ``d_steps``)."""
        term = self.term
        if not term.adaptive_d or self.d_accuracy is None:
            return term.d_steps
        if self.d_accuracy > term.d_high:
            return 0
        if self.d_accuracy < term.d_low:
            return term.d_steps + 1
        return term.d_steps

    def step(self, prediction: Tensor, target: Tensor, condition: Tensor | None = None
             ) -> dict[str, float]:
        """Update D on ``(target: real, prediction.detach(): fake)``: :meth:`planned_updates`
        times.

        Returns the mean over the updates of the term's
        :meth:`~losslab.losses.AdversarialLoss.discriminator_objective` logs (``d_loss``,
        ``r1``, ``real_logit``, ``fake_logit``, ``d_accuracy``) plus ``d_updates`` (how many
        were made) and ``d_accuracy_running``; an empty dict before the term's ``start``. A
        skipped update still measures D (no gradient) so the running accuracy can fall and
        updates resume. Advances the term's step by one. Raises ``FloatingPointError`` (before
        stepping) when the D loss is NaN/Inf, and warns once with
        :class:`~losslab.losses.DiscriminatorCollapseWarning` when D's accuracy stays at 1 for
        ``collapse_steps`` consecutive updates.

        Shape: prediction, target ``(N, C, H, W)``; condition as for the term.
        """
        term = self.term
        if not term.active:
            term.step += 1
            return {}
        updates = self.planned_updates()
        totals: dict[str, float] = {}
        for _ in range(max(updates, 1)):
            self.optimizer.zero_grad(set_to_none=True)
            with contextlib.nullcontext() if updates else torch.no_grad():
                total, logs = term.discriminator_objective(prediction, target, condition,
                                                           r1=updates > 0)
            self._update_running_accuracy(logs["d_accuracy"])
            if updates:
                total.backward()
                average_gradients_across_processes(self.discriminator)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self._track_collapse(logs["d_accuracy"])
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value / max(updates, 1)
        term.step += 1
        totals["d_updates"] = float(updates)
        totals["d_accuracy_running"] = float(self.d_accuracy or 0.0)
        return totals

    def skip(self) -> None:
        """Count a step without updating D (the trainer skipped a non-finite D loss)."""
        self.term.step += 1

    def _update_running_accuracy(self, accuracy: float) -> None:
        # Under DDP every process must take the same number of D updates (they all-reduce D's
        # gradients), so the accuracy that decides it is averaged over processes first.
        accuracy = float(mean_across_processes(torch.tensor([accuracy], dtype=torch.float64))[0])
        previous = self.d_accuracy
        self.d_accuracy = accuracy if previous is None else (
            D_ACCURACY_SMOOTHING * previous + (1.0 - D_ACCURACY_SMOOTHING) * accuracy)

    def _track_collapse(self, accuracy: float) -> None:
        self._pinned_steps = self._pinned_steps + 1 if accuracy >= 1.0 else 0
        if self._pinned_steps >= self.term.collapse_steps and not self._collapse_warned:
            self._collapse_warned = True
            warnings.warn(
                f"the discriminator has classified every real and generated patch correctly for "
                f"{self._pinned_steps} consecutive updates (step {self.term.step}): it is winning "
                "outright, so its gradient tells the generator little and training may collapse "
                "or stall. Try a lower lr_d, an R1 penalty (r1=10), spectral norm "
                "(disc=patch_sn), or a later start.",
                DiscriminatorCollapseWarning,
                stacklevel=3,
            )


def average_gradients_across_processes(module: nn.Module) -> None:
    """Average ``module``'s gradients over ``torch.distributed`` processes (no-op alone)."""
    world = world_size()
    if world == 1:
        return
    for parameter in module.parameters():
        if parameter.grad is not None:
            torch.distributed.all_reduce(parameter.grad)
            parameter.grad /= world


def attach_discriminators(loss: nn.Module, *, condition: Tensor | None = None,
                          device: torch.device | str | None = None) -> list[DiscriminatorTrainer]:
    """Build, attach and wrap the discriminator of every adversarial term in ``loss``.

    Links feature-matching terms first (:func:`~losslab.losses.adversarial.adversarial_terms`)
    and checks every ``disc=`` name before building anything (:func:`check_discriminators`).
    Call it once, after building the criterion and before wrapping it in DDP.

    Args:
        loss: the criterion (a term or a :class:`~losslab.losses.WeightedSum`).
        condition: one batch of model inputs ``(N, C, h, w)`` or ``(N, T, C, h, w)``, needed
            by conditional terms without ``condition_channels``.
        device: where new discriminators go (default: the condition's device, else CPU).

    Returns:
        One :class:`DiscriminatorTrainer` per adversarial term, in module order (a standalone
        feature-matching term's own adversary included).
    """
    terms = check_discriminators(loss)
    return [DiscriminatorTrainer(term, condition=condition, device=device) for term in terms]


__all__ = [
    "D_ACCURACY_SMOOTHING",
    "DiscriminatorTrainer",
    "attach_discriminators",
    "average_gradients_across_processes",
    "build_discriminator_for",
    "check_discriminators",
    "condition_channels",
]
