"""The LightningModule that trains every task: one short training step, manual optimisation.

:class:`TaskModule` holds the model (``self.model``), the loss (``self.loss``; the
:class:`~losslab.losses.WeightedSum` of terms is ``self.criterion``) and a task adapter
(:mod:`losslab.train.tasks`) that turns a batch into ``(input, target)``. The loss is a submodule,
so discriminators of adversarial terms (built and attached at setup by
:func:`~losslab.train.adversarial.attach_discriminators`) are in ``state_dict()`` and
checkpoints; their optimizers are added to the checkpoint by :meth:`on_save_checkpoint`.

There is one training loop for every loss (manual optimisation): forward, loss (given the
generator's last layer, for adaptive adversarial weights), backward, generator step, EMA
update, then one D step per adversarial term
(:class:`~losslab.train.adversarial.DiscriminatorTrainer`). Read :meth:`TaskModule.training_step`
top to bottom.

Stabilisers (config): ``ema_decay`` keeps an average of the weights (``self.ema_model``,
:mod:`.ema`) that evaluation uses (:attr:`TaskModule.eval_model`); ``skip_nonfinite`` skips
NaN/Inf steps instead of stopping (:mod:`.nonfinite`).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

import losslab
from losslab.losses.base import Loss
from losslab.losses.context import LossContext
from losslab.losses.multi_hypothesis import (
    MultiHypothesisLoss,
    best_hypothesis,
    select_hypothesis,
)
from losslab.losses.weighted_sum import WeightedSum
from losslab.metrics.fidelity import psnr_from_mse, squared_error_sum
from losslab.models import build_model, get_model_class, model_parameters
from losslab.models.latent import (
    LatentModel,
    gaussian_kl,
    kl_with_free_bits,
    prior_noise,
    reparameterise,
)
from losslab.train.adversarial import attach_discriminators
from losslab.train.config import TrainConfig, parse_scheduled_weight
from losslab.train.data import GlobalBatchSampler, build_data
from losslab.train.ema import ema_decay_at, make_ema, update_ema
from losslab.train.gradient_share import gradient_shares
from losslab.train.latent import CollapseMonitor, build_posterior, step_generator, write_note
from losslab.train.nonfinite import NonFiniteGuard
from losslab.train.tasks import get_task

log = logging.getLogger(__name__)


class TrainingDivergedError(FloatingPointError):
    """The loss or the model output became NaN/Inf; the message names the step and the term."""


def build_criterion(config: TrainConfig) -> WeightedSum:
    """The loss spec as a :class:`WeightedSum` (a lone term is wrapped, for uniform logging)."""
    built = losslab.loss(config.loss, check_values=config.check_values)
    if isinstance(built, WeightedSum):
        return built
    total = WeightedSum([built])
    total.check_values = config.check_values
    return total


def build_multi_hypothesis_loss(config: TrainConfig, criterion: WeightedSum) -> MultiHypothesisLoss:
    """The winner-takes-all wrapper of ``criterion`` with the ``hypotheses:`` assignment; its
    schedule runs over ``hypotheses.schedule_steps`` (default: three quarters of the run's
    ``steps``, so the last quarter trains with the end value: hard WTA for evolving; it scales
    with ``--budget-scale``)."""
    options = config.hypotheses
    return MultiHypothesisLoss(
        criterion, mode=options.mode, epsilon=options.epsilon, assignment=options.assignment,
        temperature=options.temperature, temperature_end=options.temperature_end,
        temperature_schedule=options.temperature_schedule,
        schedule_steps=options.schedule_steps or max(1, (3 * config.steps) // 4))


def build_network(config: TrainConfig, item: Tensor) -> nn.Module:
    """The task's model (wrapped in ``MultiHypothesisHead`` when ``hypotheses.count > 1``, in
    :class:`~losslab.models.latent.LatentModel` when ``latent.mode != 'none'``; with
    ``broadcast`` injection the network gets ``latent.dim`` extra input channels)."""
    task = get_task(config)
    options = {**task.model_options(item), **config.model.options}
    count = config.hypotheses.count
    name = config.model.name or task.default_model
    latent = config.latent
    if not latent.enabled:
        return build_model(name, hypotheses=count if count > 1 else None,
                           scores=config.hypotheses.scores and count > 1, **options)
    in_channels = int(task.split(item.unsqueeze(0))[0].shape[1])
    if latent.injection == "broadcast":
        if "in_channels" not in model_parameters(name):
            raise ValueError(f"model {name!r} has no in_channels option, so z cannot be added as "
                             "input channels; use latent.injection: film (with a U-Net) or "
                             "model: unet.")
        channels_for = getattr(get_model_class(name), "output_channels_for", None)
        if channels_for is not None:  # out_channels may default to in_channels (autoencoder)
            options["out_channels"] = int(channels_for(options))
        options["in_channels"] = in_channels + latent.dim
    return LatentModel(build_model(name, **options), latent.dim, in_channels, latent.injection)


class TaskModule(L.LightningModule):
    """Trains ``config.task`` with ``config.loss``; see the module docstring.

    Args:
        config: the run's :class:`~losslab.train.config.TrainConfig`.
        datasets: ``(train, val)`` if already built (else built from ``config.data``).
    """

    def __init__(self, config: TrainConfig, datasets: tuple[Dataset, Dataset] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config.to_dict()})
        self.config = config
        self.task = get_task(config)
        self.train_set, self.val_set = datasets if datasets is not None else build_data(config)
        self.model = build_network(config, self.val_set[0])
        criterion = build_criterion(config)
        self.loss: Loss = criterion  # the one registered copy (state_dict keys "loss.*")
        if config.hypotheses.count > 1:
            self.loss = build_multi_hypothesis_loss(config, criterion)
        # Discriminators are built now (a conditional one from an example input's channels), so
        # they are in the state_dict before a checkpoint is loaded and before DDP wraps us.
        example_inputs, example_target = self.task.split(self.val_set[0].unsqueeze(0))
        # latent runs: cvae's posterior q(z | input, target) is trained with the model but is not
        # part of the evaluated model (evaluated_weights keeps model.* / ema_model.* only).
        self.latent = config.latent if config.latent.enabled else None
        self.posterior = (build_posterior(config, example_inputs, example_target)
                          if config.latent.mode == "cvae" else None)
        self.kl_weight, self.kl_schedule = parse_scheduled_weight(config.latent.kl_weight)
        self.collapse = CollapseMonitor(config.latent.collapse_kl, config.latent.collapse_patience)
        self.adversarial = attach_discriminators(self.criterion, condition=example_inputs)
        self._adaptive = any(d.term.adaptive for d in self.adversarial)
        self.ema_model = make_ema(self.model) if config.ema_decay > 0 else None
        self.uses_ema_prediction = any(part.term.uses_ema_prediction
                                       for part in self.criterion.weighted_terms())
        check_stabilisers(config, self.criterion, self.uses_ema_prediction)
        self.guard = NonFiniteGuard(config.skip_nonfinite) if config.skip_nonfinite else None
        self.automatic_optimization = False
        # DDP reduces the generator's gradients only (and the cvae posterior's, trained with it):
        # each discriminator averages its own in its D step (DDP's reducer would wait for D
        # gradients in the generator's backward and fail), and the EMA copy has none. Read by
        # torch's DistributedDataParallel at wrapping. Learned loss parameters (robust's
        # alpha/scale) are optimised with the model, so DDP reduces their gradients too.
        learned = {id(p) for p in self.loss_parameters()}
        self._ddp_params_and_buffers_to_ignore = [
            name for name, p in self.named_parameters()
            if not name.startswith(("model.", "posterior.")) and id(p) not in learned]

    @property
    def eval_model(self) -> nn.Module:
        """The model evaluation uses: the EMA average when ``ema_decay > 0``, else the model."""
        return self.ema_model if self.ema_model is not None else self.model

    def last_layer(self) -> Tensor | None:
        """The generator's last layer weight, passed to the loss for adaptive adversarial
        weights (``None`` when no term is adaptive)."""
        return last_layer_weight(self.model) if self._adaptive else None

    def loss_context(self, inputs: Tensor, *, training: bool = True) -> LossContext:
        """What the terms beyond ``(prediction, target)`` read this step: the model input
        (conditional discriminators), the last layer (adaptive weights) and, in training, the
        EMA model's prediction for ``inputs`` (LDL; validation uses the unrefined map)."""
        ema_prediction = None
        if training and self.uses_ema_prediction and self.ema_model is not None:
            with torch.no_grad():
                ema_prediction = self.ema_model.eval()(inputs)
        return LossContext(condition=inputs, last_layer=self.last_layer(),
                           ema_prediction=ema_prediction)

    @property
    def criterion(self) -> WeightedSum:
        """The weighted sum of terms (inside the multi-hypothesis wrapper when ``K > 1``)."""
        return self.loss.base if isinstance(self.loss, MultiHypothesisLoss) else self.loss  # type: ignore[return-value]

    # -- the training step ----------------------------------------------------------------
    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        step = self.global_step  # updates done so far; schedules and logs use this number
        inputs, target = self.task.split(batch)
        self.prepare_terms(step)
        context = self.loss_context(inputs)

        if self.latent is None:
            prediction = self.model(inputs).to(target.dtype)  # mixed precision: loss in fp32
            loss, bad = self.guarded_loss(prediction, target, context, step)
            latent_logs: dict[str, Any] = {}
        else:  # a decoding of q's z (cvae) or m samples of the prior's (noise), see latent_loss
            prediction, loss, bad, latent_logs = self.latent_loss(inputs, target, context, step)
            if prediction.dim() == 5:  # noise: a discriminator judges each draw on its own
                inputs = inputs.repeat_interleave(prediction.shape[1], dim=0)
                target = target.repeat_interleave(prediction.shape[1], dim=0)
                prediction = prediction.flatten(0, 1)
        logs = (self.gradient_share_logs(prediction, target, context)
                if bad is None and self.latent is None and due(self.config.grad_share_every, step)
                else {})
        score_loss, score_logs = (self.score_loss(self.model, inputs) if bad is None
                                  else (None, {}))

        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        if bad is None:
            # the score head has its own parameters: its cross-entropy trains only the head
            self.manual_backward(loss if score_loss is None
                                 else loss + self.config.hypotheses.score_weight * score_loss)
            bad = ("gradients" if self.guard and self.guard.bad_gradients(self.trained_parameters())
                   else None)
        if bad is not None:  # skip: without gradients Adam changes neither weights nor moments
            optimizer.zero_grad(set_to_none=True)
        optimizer.step()  # a skipped step still counts, so the next batch comes
        if bad is None and self.ema_model is not None:
            update_ema(self.ema_model, self.model, ema_decay_at(self.config.ema_decay, step))

        d_logs, d_bad = (self.discriminator_steps(prediction, target, inputs, step)
                         if bad is None else ({}, None))
        logs |= self.end_step(step, bad or d_bad)

        self.log("loss", loss.detach(), prog_bar=True, logger=False)
        if due(self.config.log_every, step):
            logs |= self.training_logs(loss) | d_logs | latent_logs | {
                f"train/{key}": value for key, value in score_logs.items()}
        if logs:
            self.write_metrics(logs, step)
        return loss.detach()

    def score_loss(self, model: nn.Module, inputs: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        """The score head's cross-entropy against each sample's winning hypothesis (the lowest
        per-hypothesis loss of the last loss call, detached) and ``{score_loss,
        score_accuracy}`` (fraction of samples whose winner has the highest logit); ``(None,
        {})`` for a model without a score head."""
        if not callable(getattr(model, "scores", None)) or not isinstance(self.loss, MultiHypothesisLoss):
            return None, {}
        winners = self.loss.last_best
        logits = model.scores(inputs).float()
        value = nn.functional.cross_entropy(logits, winners)
        accuracy = (logits.detach().argmax(dim=1) == winners).float().mean()
        return value, {"score_loss": value.detach(), "score_accuracy": accuracy}

    def trained_parameters(self) -> list[nn.Parameter]:
        """The parameters the generator's optimizer updates: the model's and the posterior's."""
        parameters = list(self.model.parameters())
        if self.posterior is not None:
            parameters += list(self.posterior.parameters())
        return parameters

    # -- latent-variable runs -------------------------------------------------------------
    def latent_loss(self, inputs: Tensor, target: Tensor, context: LossContext, step: int
                    ) -> tuple[Tensor, Tensor, str | None, dict[str, Any]]:
        """``(prediction, loss, cause, logs)`` of one step of a latent run.

        ``cvae``: ``z ~ q(z | inputs, target)`` (reparameterised), ``prediction = model(inputs,
        z)`` ``(N, C, H, W)``, ``loss = spec(prediction, target) + beta(step) * KL`` with free
        bits. ``noise``: ``prediction`` is ``latent.samples`` draws per input ``(N, m, C, H,
        W)`` and ``loss`` the spec on them (its sample-based terms see the draws). The noise
        comes from :func:`~losslab.train.latent.step_generator`, so a resumed run draws the same.
        ``cause`` names what was NaN/Inf with ``skip_nonfinite`` (else that raises).
        """
        latent = self.config.latent
        generator = step_generator(self.config.seed, step, self.global_rank, inputs.device)
        if latent.mode == "noise":
            n, m = inputs.shape[0], latent.samples
            z = prior_noise(n * m, latent.dim, device=inputs.device, dtype=inputs.dtype,
                            generator=generator)
            samples = self.model(inputs.repeat_interleave(m, dim=0), z)
            samples = samples.unflatten(0, (n, m)).to(target.dtype)
            loss, bad = self.guarded_loss(samples, target, context, step)
            return samples, loss, bad, {}
        posterior = self.posterior
        if posterior is None:
            raise RuntimeError("latent.mode 'cvae' without a posterior encoder; build the "
                               "TaskModule from the config.")
        mean, log_variance = posterior(inputs, target)
        z = reparameterise(mean, log_variance, generator)
        prediction = self.model(inputs, z).to(target.dtype)
        reconstruction, bad = self.guarded_loss(prediction, target, context, step)
        kl_per_dim = gaussian_kl(mean.float(), log_variance.float())
        kl = kl_per_dim.sum()
        beta = self.kl_weight * self.kl_schedule.factor(step)
        loss = reconstruction + beta * kl_with_free_bits(kl_per_dim, latent.free_bits)
        kl_value = float(kl.detach())
        if bad is None and not torch.isfinite(kl.detach()):
            if self.guard is None:
                raise TrainingDivergedError(f"non-finite KL of the posterior at step {step}; "
                                            "lower the learning rate.")
            bad = "kl"
        warning = self.collapse.update(step, kl_value, beta) if bad is None else None
        if warning is not None:
            log.warning("%s", warning)
            if self.trainer.is_global_zero:
                write_note(self.config.out, "posterior_collapse", self.collapse.reported)
        logs = {"train/kl": kl_value, "train/kl_weight": beta,
                "train/reconstruction": float(reconstruction.detach())}
        return prediction, loss, bad, logs

    def latent_validation_step(self, batch: Tensor, batch_idx: int) -> None:
        """Validation of a latent run: ``val/psnr`` and ``val/l1`` of one prior sample per input
        (what evaluation scores; seeded by the batch, the same draws at every validation).

        ``val/loss`` (which picks ``best.ckpt``): ``cvae``: the spec on the decoding of the
        posterior mean plus the *final* KL weight times the KL (the objective at the end of the
        warm-up, so values of different steps compare; a prior sample's error would prefer the
        collapsed mean); ``noise``: the spec on ``latent.samples`` prior draws per input.
        """
        inputs, target = self.task.split(batch)
        context = self.loss_context(inputs, training=False)
        model = self.eval_model
        generator = torch.Generator(device=inputs.device)
        generator.manual_seed(self.config.seed * 1_000_003 + batch_idx)
        latent = self.config.latent
        values: dict[str, Tensor] = {}
        if latent.mode == "cvae":
            posterior = self.posterior
            if posterior is None:
                raise RuntimeError("latent.mode 'cvae' without a posterior encoder; build the "
                                   "TaskModule from the config.")
            prediction = model.sample(inputs, 1, generator=generator)[:, 0].to(target.dtype)
            mean, log_variance = posterior(inputs, target)
            decoded = model(inputs, mean).to(target.dtype)
            reconstruction = self.loss(decoded, target, context)
            kl = gaussian_kl(mean.float(), log_variance.float()).sum()
            values |= {f"val/loss/{n}": v for n, v in self.term_values().items()}
            loss = reconstruction + self.kl_weight * kl
            values |= {"val/kl": kl, "val/reconstruction": reconstruction}
        else:
            samples = model.sample(inputs, latent.samples, generator=generator).to(target.dtype)
            loss = self.loss(samples, target, context)
            values |= {f"val/loss/{n}": v for n, v in self.term_values().items()}
            prediction = samples[:, 0]
        total, count = squared_error_sum(prediction, target)
        self._val_squared_error += total
        self._val_count += count
        values |= {"val/loss": loss, "val/l1": (prediction - target).abs().mean()}
        for name, value in values.items():
            self.log(name, value, on_epoch=True, batch_size=target.shape[0], sync_dist=True,
                     logger=False)

    def prepare_terms(self, step: int) -> None:
        """Tell the weight schedules, the hypotheses' assignment (annealed temperature,
        evolving top-k) and the adversarial terms the step."""
        self.loss.set_step(step)  # a MultiHypothesisLoss passes it on to the sum
        for discriminator in self.adversarial:
            discriminator.term.set_step(step)

    def guarded_loss(self, prediction: Tensor, target: Tensor, context: LossContext,
                     step: int) -> tuple[Tensor, str | None]:
        """``(loss, None)``, or with ``skip_nonfinite`` on a NaN/Inf ``(loss, cause)``: the
        names of the non-finite terms (or ``model output``) instead of an error."""
        if self.guard is None:
            return self.compute_loss(prediction, target, context, step), None
        if not bool(torch.isfinite(prediction.detach()).all()):
            return prediction.sum() * 0.0, "model output"
        self.loss.last_values = {}  # type: ignore[assignment]  # so stale values are not blamed
        try:
            loss = self.loss(prediction, target, context)
        except FloatingPointError:
            loss = prediction.sum() * float("nan")
        if bool(torch.isfinite(loss.detach())):
            return loss, None
        return loss, self.nonfinite_terms(prediction, target, context)

    def nonfinite_terms(self, prediction: Tensor, target: Tensor, context: LossContext) -> str:
        """Which terms were NaN/Inf in this step's loss call (``term_values``), or, when a term
        raised before the sum recorded its values, which are NaN/Inf evaluated alone."""
        bad = [name for name, value in self.term_values().items()
               if not bool(torch.isfinite(value).all())]
        if self.term_values():
            return "+".join(bad) or "loss"
        with torch.no_grad():
            for part in self.criterion.weighted_terms():
                try:
                    finite = bool(torch.isfinite(part.term.evaluate(
                        prediction, target, context)).all())
                except FloatingPointError:
                    finite = False
                if not finite:
                    bad.append(part.name)
        return "+".join(bad) or "loss"

    def end_step(self, step: int, cause: str | None) -> dict[str, float]:
        """Count a skipped step (``skip_nonfinite``); stop after too many in a row."""
        if self.guard is None:
            return {}
        logs, stop = self.guard.end_step(step, cause)
        if cause is not None:
            log.warning("step %d skipped: non-finite %s", step, cause)
        if stop is not None:
            raise TrainingDivergedError(stop)
        return logs

    def discriminator_steps(self, prediction: Tensor, target: Tensor, inputs: Tensor,
                            step: int) -> tuple[dict[str, float], str | None]:
        """Each adversarial term's D is updated on this step's (detached) prediction.

        Returns ``(logs, cause)``: ``cause`` names a term whose D loss was NaN/Inf (its D was
        not updated) when ``skip_nonfinite`` is on; without it that raises.
        """
        logs: dict[str, float] = {}
        cause = None
        for discriminator in self.adversarial:
            try:
                term_logs = discriminator.step(prediction, target, inputs)
            except FloatingPointError as error:
                if self.guard is None:
                    raise TrainingDivergedError(f"non-finite discriminator loss at step {step}: "
                                                f"{error}") from error
                discriminator.skip()
                cause, term_logs = f"{discriminator.name} (discriminator)", {}
            logs |= {f"adversarial/{discriminator.name}/{k}": v for k, v in term_logs.items()}
        return logs, cause

    def compute_loss(self, prediction: Tensor, target: Tensor, context: LossContext,
                     step: int) -> Tensor:
        """``self.loss(prediction, target, context)``; NaN/Inf raises :class:`TrainingDivergedError`."""
        try:
            return self.loss(prediction, target, context)
        except FloatingPointError as error:
            raise TrainingDivergedError(f"non-finite loss at step {step}: {error}") from error
        except ValueError as error:
            if bool(torch.isfinite(prediction.detach()).all()):
                raise
            raise TrainingDivergedError(
                f"the model output became NaN/Inf at step {step} (the weights diverged in the "
                f"previous update): {error}"
            ) from error

    # -- logging --------------------------------------------------------------------------
    # Scalars go straight to the loggers at an exact step (Lightning's self.log would repeat a
    # periodic value in every later row); only validation uses self.log, for ModelCheckpoint.
    def write_metrics(self, values: dict[str, Any], step: int) -> None:
        """Write ``values`` (floats or 0-d tensors) as one row at ``step`` to CSV and TensorBoard."""
        row = {k: float(v) for k, v in values.items()}
        for logger in self.loggers:
            logger.log_metrics(row, step=step)

    def term_values(self) -> dict[str, Tensor]:
        """Each term's value in the last loss call (WTA-weighted with hypotheses), detached."""
        return self.loss.last_values  # type: ignore[return-value]

    def training_logs(self, loss: Tensor) -> dict[str, Any]:
        """Total loss, each term (unweighted), each effective weight, G-side adversarial logs, lr."""
        logs: dict[str, Any] = {"train/loss": loss.detach()}
        logs |= {f"train/{name}": value for name, value in self.term_values().items()}
        logs |= {f"weight/{name}": w for name, w in self.criterion.current_weights().items()}
        for discriminator in self.adversarial:
            logs |= {f"adversarial/{discriminator.name}/{k}": v
                     for k, v in discriminator.term.last_logs.items()}
        if isinstance(self.loss, MultiHypothesisLoss):
            logs |= self.loss.assignment_logs(self.config.hypotheses.count)
        logs["lr"] = self.optimizers().param_groups[0]["lr"]
        return logs

    def gradient_share_logs(self, prediction: Tensor, target: Tensor,
                            context: LossContext) -> dict[str, float]:
        """``grad_norm/<term>`` and ``grad_share/<term>`` (see :mod:`.gradient_share`)."""
        if prediction.dim() == 5:  # hypotheses: measure on each sample's winning hypothesis
            prediction = select_hypothesis(prediction, self.loss.last_best)
        shares = gradient_shares(self.criterion, prediction, target, context)
        logs = {f"grad_norm/{name}": norm for name, (norm, _) in shares.items()}
        return logs | {f"grad_share/{name}": share for name, (_, share) in shares.items()}

    # -- validation -----------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        # val/psnr is pooled over the whole validation set (losslab.metrics.fidelity), so its
        # squared errors are summed over batches, not averaged as per-batch PSNRs.
        self._val_squared_error = torch.zeros((), device=self.device)
        self._val_count = torch.zeros((), device=self.device)

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        if self.latent is not None:
            return self.latent_validation_step(batch, batch_idx)
        inputs, target = self.task.split(batch)
        prediction = self.eval_model(inputs).to(target.dtype)
        loss = self.loss(prediction, target, self.loss_context(inputs, training=False))
        if prediction.dim() == 5:  # hypotheses: L1/PSNR of the best one per sample (oracle)
            prediction = select_hypothesis(prediction, best_hypothesis(prediction, target))
        total, count = squared_error_sum(prediction, target)
        self._val_squared_error += total
        self._val_count += count
        # Term values go under val/loss/<term>: a term is a loss (``ssim`` logs 1 - SSIM), and
        # val/<metric> names (val/psnr) mean what the same key means in metrics.json.
        values = {"val/loss": loss,
                  **{f"val/loss/{n}": v for n, v in self.term_values().items()},
                  "val/l1": (prediction - target).abs().mean()}
        values |= {f"val/{key}": value
                   for key, value in self.score_loss(self.eval_model, inputs)[1].items()}
        for name, value in values.items():
            self.log(name, value, on_epoch=True, batch_size=target.shape[0], sync_dist=True,
                     logger=False)

    def on_validation_epoch_end(self) -> None:
        """``val/psnr``: the pooled PSNR of the whole validation set (every process's images)."""
        strategy = self.trainer.strategy
        total = strategy.reduce(self._val_squared_error, reduce_op="sum")
        count = strategy.reduce(self._val_count, reduce_op="sum")
        if float(count) > 0:
            value = psnr_from_mse(float(total) / float(count))
            self.log("val/psnr", value, logger=False, sync_dist=False)

    def on_validation_end(self) -> None:
        """One row of validation means at ``step`` = updates done (the model that was validated)."""
        if not self.trainer.sanity_checking:
            metrics = self.trainer.callback_metrics
            self.write_metrics({k: v for k, v in metrics.items() if k.startswith("val/")},
                               self.global_step)

    # -- optimizers and data --------------------------------------------------------------
    def loss_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the loss terms (a learned ``robust`` shape and scale), which
        the model's optimizer updates too; discriminators are left out (their own step)."""
        own = {id(p) for d in self.adversarial for p in d.discriminator.parameters()}
        return [p for p in self.loss.parameters() if p.requires_grad and id(p) not in own]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        options = self.config.optimizer
        groups: list[dict[str, Any]] = [{"params": self.trained_parameters()}]
        learned = self.loss_parameters()
        if learned:  # a second group only then, so older checkpoints' optimizer state still fits
            groups.append({"params": learned, "weight_decay": 0.0})
        return torch.optim.Adam(groups, lr=options.lr, betas=tuple(options.betas),
                                weight_decay=options.weight_decay)

    def train_dataloader(self) -> DataLoader:
        world, rank = self.trainer.world_size, self.trainer.global_rank
        sampler = GlobalBatchSampler(len(self.train_set), self.config.data.batch_size,
                                     world_size=world, rank=rank, seed=self.config.seed,
                                     step_source=lambda: self.trainer.global_step)
        return DataLoader(self.train_set, batch_sampler=sampler,
                          num_workers=self.config.data.num_workers,
                          persistent_workers=False)

    def val_dataloader(self) -> DataLoader:
        items = Subset(self.val_set, range(min(self.config.data.val_items, len(self.val_set))))
        per_process = self.config.data.batch_size // max(1, self.trainer.world_size)
        return DataLoader(items, batch_size=per_process, shuffle=False,
                          num_workers=self.config.data.num_workers)

    def on_train_start(self) -> None:  # also runs when resuming mid-epoch (the next hook doesn't)
        self.on_train_epoch_start()

    def on_train_epoch_start(self) -> None:
        """Fresh (seeded) crops every epoch; the epoch is the batch sampler's, from the step."""
        sampler = self.trainer.train_dataloader.batch_sampler
        if hasattr(self.train_set, "set_epoch") and isinstance(sampler, GlobalBatchSampler):
            self.train_set.set_epoch(sampler.position()[0])

    # -- checkpoints ----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add the config, its fingerprint and the discriminators' optimizer states."""
        for name, parameter in self.model.named_parameters():
            if not bool(torch.isfinite(parameter).all()):
                raise TrainingDivergedError(
                    f"parameter {name!r} is NaN/Inf at step {self.global_step}; not saving this "
                    "state (the previous checkpoint is kept). Lower the learning rate."
                )
        checkpoint["losslab"] = {
            "config": self.config.to_dict(),
            "fingerprint": self.config.fingerprint(),
            "metrics": {k: float(v) for k, v in self.trainer.callback_metrics.items()
                        if k.startswith("val/")},
            "discriminator_optimizers": [d.optimizer.state_dict() for d in self.adversarial],
            "discriminator_accuracy": [d.d_accuracy for d in self.adversarial],
            "nonfinite": self.guard.state_dict() if self.guard is not None else {},
            "latent_collapse": self.collapse.state_dict(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        stored = checkpoint.get("losslab", {})
        for discriminator, state in zip(self.adversarial,
                                        stored.get("discriminator_optimizers", []), strict=False):
            if state:  # {} from a run whose lazily built D did not exist yet
                discriminator.optimizer.load_state_dict(state)
        for discriminator, accuracy in zip(self.adversarial,
                                           stored.get("discriminator_accuracy", []), strict=False):
            discriminator.d_accuracy = accuracy
        if self.guard is not None:
            self.guard.load_state_dict(stored.get("nonfinite", {}))
        self.collapse.load_state_dict(stored.get("latent_collapse", {}))


def check_stabilisers(config: TrainConfig, criterion: WeightedSum, has_ema_terms: bool) -> None:
    """Refuse combinations that cannot work: LDL without EMA, ``@share`` with hypotheses."""
    if has_ema_terms and config.ema_decay <= 0:
        raise ValueError("the ldl term compares the model with its EMA average: set ema_decay "
                         "(e.g. ema_decay: 0.999) or drop ldl from the loss.")
    if criterion.has_share_targets and config.hypotheses.count > 1:
        raise ValueError("@share weights are measured on the plain sum; with hypotheses > 1 the "
                         "winner-takes-all loss evaluates the terms itself. Drop @share or use "
                         "hypotheses: 1.")


def due(every: int, step: int) -> bool:
    """Whether a periodic action with period ``every`` (0 = never) runs at ``step``."""
    return bool(every) and step % every == 0


def last_layer_weight(model: nn.Module) -> nn.Parameter:
    """The weight of the model's last layer with a weight of 2+ dims (for the adaptive weight)."""
    weights = [p for p in model.parameters() if p.dim() > 1]
    if not weights:
        raise ValueError(f"{type(model).__name__} has no layer with a weight matrix.")
    return weights[-1]


__all__ = ["TaskModule", "TrainingDivergedError", "build_criterion", "build_network"]
