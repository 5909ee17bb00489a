"""The training configuration: one typed model tree that fully describes a run, stored as YAML.

A run directory's ``config.yaml`` is the full resolved :class:`TrainConfig`, so
``losslab train --config runs/x/config.yaml`` re-runs it exactly. Unknown keys, tasks, precisions
or strategies raise a one-line :class:`~losslab.train.config_errors.ConfigError` (a
``ValueError``) that names the key, what it accepts, the value given, the closest valid choice
and, for a file, the line and column.

Example YAML (every key optional; omitted keys take the defaults below)::

    task: reconstruct
    loss: "l1(luma) + 0.01*perceptual@ramp(1000,2000)"
    steps: 1500
    out: runs/luma
    data: {name: bundled, crop_size: 64, batch_size: 8}
    hypotheses: {count: 1}
    optimizer: {lr: 0.001}

Why pydantic (v2) and not msgspec:

- **JSON Schema export.** ``model_json_schema()`` gives a draft 2020-12 schema with each field's
  type, bounds, choices, default and description (``losslab schema train``), which YAML editors
  use to complete and check files. msgspec exports schemas too, but every description and bound
  would have to be restated as ``msgspec.Meta``; here they come from the same ``Field`` /
  ``Annotated`` types the validation uses.
- **Field-level validators.** ``BeforeValidator`` (YAML's ``precision: 32`` is the string
  ``"32"``, a YAML list is the ``betas`` pair), ``field_validator`` with a validation context
  (an experiment's relative weights path is read from the file's folder) and ``model_validator``
  for the checks that involve several fields. msgspec has constraints and ``__post_init__``
  only, with no per-field hooks.
- **Error locations.** A pydantic error carries a structured location (``('entries', 2,
  'lr')``), a type (``extra_forbidden``, ``greater_than``) and the input, which
  :mod:`losslab.train.config_errors` turns into our one-line message with the closest valid key
  and the YAML line and column; msgspec reports one message string (``Expected `int`, got `str` -
  at `$.data.crop_size```) that would have to be parsed back.

msgspec is faster, but a config is validated a handful of times per run.

Every field's type is *strict*: ``steps: 3.0``, ``steps: "3"`` and ``steps: true`` are refused
(YAML typos, not intentions); only CLI overrides convert strings (:func:`config_from_overrides`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

from losslab.core.atomic import write_text_atomic
from losslab.core.registry import suggest
from losslab.core.yaml_io import Positions, load_yaml, load_yaml_with_positions
from losslab.data import available_datasets
from losslab.losses.schedule import CONSTANT, WeightSchedule
from losslab.models import available_models
from losslab.models.registry import get_model_class
from losslab.train.config_errors import ConfigError, Expect, OneLineErrors, validated

#: Largest seed ``lightning.seed_everything`` accepts (numpy's limit).
MAX_SEED = 2**32 - 1

# -- field types: each defined once, used by TrainConfig and by the experiment schema ------------
TaskName = Literal["reconstruct", "super_resolve", "predict_next", "colorize"]
PrecisionName = Literal["32", "16-mixed", "bf16-mixed"]
StrategyName = Literal["auto", "ddp"]
AcceleratorName = Literal["auto", "cpu", "gpu", "cuda", "mps"]
WTAMode = Literal["relaxed", "wta"]
AssignmentName = Literal["relaxed", "annealed", "evolving"]
TemperatureScheduleName = Literal["exponential", "linear"]
DownscaleMethod = Literal["bicubic", "area"]
LatentMode = Literal["none", "cvae", "noise"]
LatentInjection = Literal["broadcast", "film"]

TASKS: tuple[str, ...] = get_args(TaskName)
PRECISIONS: tuple[str, ...] = get_args(PrecisionName)
STRATEGIES: tuple[str, ...] = get_args(StrategyName)
ACCELERATORS: tuple[str, ...] = get_args(AcceleratorName)
WTA_MODES: tuple[str, ...] = get_args(WTAMode)
DOWNSCALE_METHODS: tuple[str, ...] = get_args(DownscaleMethod)
LATENT_MODES: tuple[str, ...] = get_args(LatentMode)


def _integer(low: int) -> Any:
    return Annotated[int, Field(ge=low), Expect(f"an integer >= {low}")]


def _precision_text(value: Any) -> Any:
    """``precision: 32`` in YAML is an integer; Lightning wants the string ``"32"``."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _pair(value: Any) -> Any:
    """YAML has lists, not tuples: ``[0.9, 0.999]`` is read as the pair ``(0.9, 0.999)``."""
    return tuple(value) if isinstance(value, list) else value


PositiveInt = _integer(1)
NonNegativeInt = _integer(0)
Steps = _integer(1)
CropSize = _integer(1)
BatchSize = _integer(1)
HypothesisCount = _integer(1)
Seed = Annotated[int, Field(ge=0, le=MAX_SEED),
                 Expect(f"an integer from 0 to {MAX_SEED} (2**32 - 1)")]
LossSpec = Annotated[str, Field(pattern=r"\S", examples=["l1(luma)", "mse + 0.01*perceptual"]),
                     Expect("a non-empty loss spec string such as 'l1(luma)'")]
LearningRate = Annotated[float, Field(gt=0, allow_inf_nan=False),
                         Expect("a finite number > 0 such as 1e-3")]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False), Expect("a number in [0, 1)")]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False),
                             Expect("a finite number >= 0")]
Options = Annotated[dict[str, Any], Expect("a mapping (YAML dict) such as {width: 8}")]
DatasetName = Annotated[str, Field(min_length=1),
                        Expect("a data set name (losslab.data.available_datasets())")]
ModelName = Annotated[str | None, Expect("a model name (losslab.models.available_models()) or null")]
Precision = Annotated[PrecisionName, BeforeValidator(
    _precision_text, json_schema_input_type=Literal["32", "16-mixed", "bf16-mixed", 32])]
Betas = Annotated[tuple[Fraction, Fraction], BeforeValidator(_pair),
                  Expect("two numbers in [0, 1) such as [0.9, 0.999]")]
Flag = Annotated[bool, Expect("true or false")]


class _Section(OneLineErrors):
    """A config section: unknown keys refused, strict types, checked again on assignment, and a
    one-line :class:`ConfigError` instead of pydantic's multi-line dump."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True,
                              validate_default=False)


class DataConfig(_Section):
    """Which data to train on.

    Attributes:
        name: dataset name for :func:`losslab.data.build_datasets` (``bundled``, ``dead_leaves``,
            ``moving_shapes``, ``folder``, ``cifar10``, ...).
        crop_size: side of the square training/validation crops, in pixels.
        batch_size: the *global* batch (images per optimizer step, summed over every process);
            with ``devices * num_nodes`` processes each process loads ``batch_size / processes``.
        num_workers: ``DataLoader`` worker processes per training process (0 = load in-process).
        val_items: how many validation items form the fixed validation set (the first ones).
        sample_count: how many validation items appear in each sample grid PNG.
        options: extra keyword arguments for ``build_datasets`` (e.g. ``{path: photos/}``).
        seed: the data sets' seed (training crops and the fixed validation items); ``None`` =
            the run's ``seed``. A comparison over several seeds sets it to the experiment's
            seed, so every seed of an entry is judged on the same validation images while its
            own ``seed`` changes the model initialisation and the batch order.
    """

    name: DatasetName = Field("bundled", description="data set name for losslab.data.build_datasets "
                              "(bundled, dead_leaves, moving_shapes, folder, cifar10, ...)")
    crop_size: CropSize = Field(64, description="side of the square training/validation crops, "
                                "pixels")
    batch_size: BatchSize = Field(8, description="global batch: images per optimizer step, summed "
                                  "over every process")
    num_workers: NonNegativeInt = Field(0, description="DataLoader worker processes per training "
                                        "process (0 = load in-process)")
    val_items: PositiveInt = Field(16, description="how many validation items form the fixed "
                                   "validation set")
    sample_count: PositiveInt = Field(6, description="validation items in each sample grid PNG")
    options: Options = Field(default_factory=dict, description="extra build_datasets options, "
                             "e.g. {path: photos/}")
    seed: Seed | None = Field(None, description="seed of the training crops and the validation "
                              "items; null = the run's seed")


class ModelConfig(_Section):
    """Which network to train.

    Attributes:
        name: model name for :func:`losslab.models.build_model`; ``None`` picks the task's model
            (reconstruct: ``autoencoder``, super_resolve: ``super_resolution``, predict_next and
            colorize: ``unet``).
        options: extra keyword arguments for ``build_model`` (e.g. ``{width: 32, depth: 3}``);
            the channel counts / scale a task needs are filled in by the task.
    """

    name: ModelName = Field(None, description="model name for losslab.models.build_model; null = "
                            "the task's model")
    options: Options = Field(default_factory=dict, description="extra build_model options, e.g. "
                             "{width: 32, depth: 3}")


class TaskOptions(_Section):
    """Task-specific settings (each task reads only its own).

    Attributes:
        scale: super_resolve: the downscaling factor of the input (2 or 4).
        downscale_method: super_resolve: how the low-resolution input is made from the target
            (``bicubic`` or ``area``, see :func:`losslab.data.degradations.downscale`).
        context_frames: predict_next: how many past frames ``k`` the model sees (stacked on
            channels, ``3k`` input channels); the target is frame ``k`` (0-based) of each clip.
            ``None`` = every frame but the last (``k = T - 1``).
    """

    scale: Annotated[Literal[2, 4], Expect("2 or 4")] = Field(
        2, description="super_resolve: the downscaling factor of the input")
    downscale_method: DownscaleMethod = Field(
        "bicubic", description="super_resolve: how the low-resolution input is made")
    context_frames: Annotated[PositiveInt | None, Expect("null or an integer >= 1")] = Field(
        None, description="predict_next: past frames the model sees; null = all but the last")


class HypothesesConfig(_Section):
    """Multiple hypotheses (winner-takes-all training) and their score head.

    Attributes:
        count: ``K``, the number of outputs per input; 1 = an ordinary single-output model.
            ``K > 1`` wraps the model in ``MultiHypothesisHead`` and the loss in
            ``MultiHypothesisLoss``.
        assignment: how each sample's loss is shared among the ``K`` hypotheses:
            ``relaxed`` (``mode``/``epsilon`` below, fixed), ``annealed`` (annealed MCL:
            ``softmax(-loss_k / T)`` with ``T`` falling from ``temperature`` to
            ``temperature_end``) or ``evolving`` (evolving WTA: the ``k`` best share it, ``k``
            falling from ``K`` to 1); see :mod:`losslab.losses.multi_hypothesis`.
        mode: ``relaxed`` (the best hypothesis per sample gets ``1 - epsilon`` of the loss, the
            others share ``epsilon``, so none of them dies) or ``wta`` (only the best one);
            assignment ``relaxed`` only.
        epsilon: the relaxed-WTA share given to the non-winning hypotheses, in ``[0, 1)``.
        temperature: annealed: the starting temperature, in the base loss's units (per-image
            MSE of ``[0, 1]`` images is about 1e-3 to 1e-1; the default 0.01 -> 1e-5 spans
            the loss differences between hypotheses of MSE on such images).
        temperature_end: annealed: the final temperature (0 = hard WTA; linear schedule only).
        temperature_schedule: annealed: ``exponential`` (geometric) or ``linear`` cooling.
        schedule_steps: annealed/evolving: steps until the temperature / top-k reaches its end
            (null = 3/4 of the run's ``steps``, so the last quarter trains at the end value);
            after that the end value holds.
        scores: add a score head (K logits per input, trained with cross-entropy to predict
            each sample's winning hypothesis); the model can then be sampled (one hypothesis
            drawn by the head's probabilities), see ``MultiHypothesisHead``.
        score_weight: weight of the score head's cross-entropy in the training loss (the head
            has its own parameters, so this only sets how fast it learns).
    """

    count: HypothesisCount = Field(1, description="K outputs per input (winner-takes-all); 1 = one")
    assignment: AssignmentName = Field("relaxed", description="relaxed (fixed epsilon), annealed "
                                       "(soft-min at falling temperature) or evolving (top-k, "
                                       "k from K to 1)")
    mode: WTAMode = Field("relaxed", description="relaxed (losers share epsilon) or wta")
    epsilon: Fraction = Field(0.05, description="relaxed-WTA share of the non-winning hypotheses")
    temperature: NonNegativeFloat = Field(
        0.01, description="annealed: starting temperature (base loss units)")
    temperature_end: NonNegativeFloat = Field(
        1e-5, description="annealed: final temperature (0 = hard WTA, linear schedule only)")
    temperature_schedule: TemperatureScheduleName = Field(
        "exponential", description="annealed: exponential (geometric) or linear cooling")
    schedule_steps: Annotated[PositiveInt | None, Expect("null or an integer >= 1")] = Field(
        None, description="annealed/evolving: steps to reach the end (null = 3/4 of the run's "
        "steps)")
    scores: Flag = Field(False, description="a score head predicting the winning hypothesis "
                         "(makes the model samplable)")
    score_weight: Annotated[float, Field(gt=0, allow_inf_nan=False),
                            Expect("a finite number > 0")] = Field(
        1.0, description="weight of the score head's cross-entropy")

    @model_validator(mode="after")
    def _check_assignment(self) -> HypothesesConfig:
        if self.assignment != "relaxed" and self.mode != "relaxed":
            raise ValueError(f"hypotheses.mode={self.mode!r} applies to assignment 'relaxed' "
                             f"only; drop mode (assignment {self.assignment!r} ends in hard WTA "
                             "by itself).")
        if self.assignment == "annealed":
            if self.temperature <= 0 or self.temperature_end > self.temperature:
                raise ValueError("hypotheses: annealing needs temperature > 0 and "
                                 "temperature_end <= temperature; e.g. 0.01 -> 0.0001.")
            if self.temperature_schedule == "exponential" and self.temperature_end <= 0:
                raise ValueError("hypotheses: an exponential temperature schedule never reaches "
                                 "0; set temperature_end > 0 (e.g. 1e-4) or "
                                 "temperature_schedule: linear.")
        return self


#: ``WEIGHT``, ``WEIGHT@start(S)`` or ``WEIGHT@ramp(B,E)``: the loss spec's schedule syntax.
_SCHEDULED_WEIGHT = re.compile(
    r"^\s*(?P<weight>[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*"
    r"(?:@(?P<kind>start|ramp)\(\s*(?P<begin>\d+)\s*(?:,\s*(?P<end>\d+)\s*)?\))?\s*$")


def parse_scheduled_weight(text: str | float) -> tuple[float, WeightSchedule]:
    """``(weight, schedule)`` of ``"1e-3@ramp(1000,1600)"`` (or ``"1e-3"``, ``"0.1@start(500)"``,
    or a plain number): the ``@start``/``@ramp`` syntax of loss specs, read by the same
    :class:`~losslab.losses.schedule.WeightSchedule`."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text), CONSTANT
    match = _SCHEDULED_WEIGHT.match(str(text))
    if match is None:
        raise ValueError(f"a scheduled weight reads WEIGHT, WEIGHT@start(STEP) or "
                         f"WEIGHT@ramp(BEGIN,END), e.g. '1e-3@ramp(1000,1600)'; got {text!r}.")
    weight = float(match["weight"])
    kind = match["kind"]
    if kind is None:
        return weight, CONSTANT
    if (kind == "ramp") != (match["end"] is not None):
        raise ValueError(f"{kind} takes {'two steps, ramp(BEGIN,END)' if kind == 'ramp' else 'one step, start(STEP)'}; "
                         f"got {text!r}.")
    end = int(match["end"]) if match["end"] is not None else 0
    return weight, WeightSchedule(kind, int(match["begin"]), end)


def _scheduled_weight(value: Any) -> Any:
    """Check a scheduled weight (a number or ``"W@ramp(B,E)"``); keep it as written."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        parse_scheduled_weight(value)  # raises a one-line ValueError
        if not isinstance(value, str):
            value = f"{float(value):g}"
    return value


ScheduledWeight = Annotated[str, BeforeValidator(_scheduled_weight,
                                                 json_schema_input_type=str | float),
                            Expect("a weight such as 1e-3 or '1e-3@ramp(1000,1600)'")]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False), Expect("a finite number >= 0")]


class LatentConfig(_Section):
    """A global latent ``z`` fed to the task network (:class:`~losslab.models.latent.LatentModel`),
    so that it draws a different plausible output per ``z ~ N(0, I)`` instead of their mean.

    Attributes:
        mode: ``none`` (an ordinary deterministic network), ``cvae`` (a conditional VAE: a
            posterior encoder ``q(z | input, target)`` gives ``z`` in training, the run's loss
            scores the decoding, plus ``kl_weight * KL(q || N(0, I))``; evaluation samples the
            prior) or ``noise`` (a noise-input generator trained on ``samples`` draws per input
            by the run's loss, which must contain a sample-based term such as an energy score).
        dim: dimensions of ``z``.
        injection: ``broadcast`` (``z`` tiled over the image as extra input channels) or
            ``film`` (per-channel scale and shift of the U-Net's encoder levels).
        kl_weight: ``cvae``: the weight ``beta`` of the KL term with the loss spec's schedule
            syntax, e.g. ``1e-3@ramp(1000,1600)`` (0 until step 1000, linear to 1e-3 at 1600).
            Without a warm-up the posterior tends to collapse (KL 0: the model ignores ``z``).
        free_bits: ``cvae``: nats per dimension of ``z`` that cost nothing (KL_d is charged as
            ``max(KL_d, free_bits)``); 0 = the plain KL.
        samples: ``noise``: ``m``, draws of ``z`` per input in each step (``>= 2``: a proper
            scoring rule needs two draws to see spread).
        posterior_width: ``cvae``: channels of the posterior encoder's first level.
        collapse_kl: ``cvae``: a KL (summed over ``z``, nats) below this counts as collapsed.
        collapse_patience: ``cvae``: after this many consecutive collapsed steps once ``beta`` is
            non-zero, a warning is logged and recorded in the run's ``notes.json`` (0 = never).
    """

    mode: LatentMode = Field("none", description="none, cvae (conditional VAE, prior sampled "
                             "at evaluation) or noise (noise-input generator, sample-based loss)")
    dim: PositiveInt = Field(8, description="dimensions of the latent z")
    injection: LatentInjection = Field("broadcast", description="broadcast (z as extra input "
                                       "channels) or film (scale/shift of the encoder levels)")
    kl_weight: ScheduledWeight = Field("1e-3@ramp(1000,1600)", description="cvae: KL weight "
                                       "with @start/@ramp schedule, e.g. '1e-3@ramp(1000,1600)'")
    free_bits: NonNegativeFloat = Field(0.0, description="cvae: free nats per latent dimension")
    samples: Annotated[int, Field(ge=2), Expect("an integer >= 2")] = Field(
        2, description="noise: draws of z per input per step")
    posterior_width: PositiveInt = Field(16, description="cvae: posterior encoder width")
    collapse_kl: NonNegativeFloat = Field(0.05, description="cvae: KL (nats, summed) below which "
                                          "the posterior counts as collapsed")
    collapse_patience: NonNegativeInt = Field(200, description="cvae: collapsed steps (beta > 0) "
                                              "before the warning; 0 = never")

    @property
    def enabled(self) -> bool:
        """Whether the network gets a latent (``mode != 'none'``)."""
        return self.mode != "none"


class OptimizerConfig(_Section):
    """The generator's optimizer (Adam).

    Attributes:
        lr: learning rate.
        betas: Adam's ``(beta1, beta2)``.
        weight_decay: L2 weight decay (0 = none).
    """

    lr: LearningRate = Field(1e-3, description="Adam learning rate")
    betas: Betas = Field((0.9, 0.999), description="Adam's (beta1, beta2)")
    weight_decay: Annotated[float, Field(ge=0, allow_inf_nan=False),
                            Expect("a finite number >= 0 such as 0")] = Field(
        0.0, description="L2 weight decay (0 = none)")


class CheckpointConfig(_Section):
    """Checkpointing and resume.

    Checkpoints are written at every validation (every ``val_every`` steps, and at the last step):
    ``checkpoints/last.ckpt`` always, ``checkpoints/best.ckpt`` when the validation loss improves.

    Attributes:
        save_best: keep ``best.ckpt`` (lowest ``val/loss``).
        resume: when ``checkpoints/last.ckpt`` exists in ``out``, continue from it (the stored
            config must match, apart from the fields in :data:`RESUME_SAFE_FIELDS`).
    """

    save_best: Flag = Field(True, description="keep best.ckpt (lowest val/loss)")
    resume: Flag = Field(True, description="continue from checkpoints/last.ckpt in out when it "
                         "exists")


#: The nested sections of a config (a YAML ``null`` there means "all defaults").
SECTIONS = ("data", "model", "task_options", "hypotheses", "latent", "optimizer", "checkpoint")


class TrainSettings(_Section):
    """Every field of a training config, each checked alone; :class:`TrainConfig` adds the checks
    that involve several fields. The experiment schema uses this model for ``train_options``: a
    *partial* config (only the keys given are applied, see ``model_dump(exclude_unset=True)``).
    """

    model_config = ConfigDict(title="training settings (any subset of a losslab training config)")

    task: TaskName = Field("reconstruct", description="reconstruct (autoencoder), super_resolve, "
                           "predict_next (next video frame) or colorize (colour from BT.601 luma)")
    loss: LossSpec = Field("l1", description="loss spec for losslab.loss, e.g. 'l1(luma)' or "
                           "'mse + 0.01*perceptual@ramp(1000,2000)'")
    steps: Steps = Field(1000, description="optimizer-step budget (the generator's steps)")
    out: Annotated[str, Field(min_length=1), Expect("a folder path")] = Field(
        "runs/run", description="the run directory (config.yaml, checkpoints/, logs/, samples/)")
    name: Annotated[str, Expect("a string")] = Field(
        "", description="a label for reports; empty = the name of out")
    seed: Seed = Field(0, description="seed for model init, data order and crops")
    data: DataConfig = Field(default_factory=DataConfig, description="which data to train on")
    model: ModelConfig = Field(default_factory=ModelConfig, description="which network to train")
    task_options: TaskOptions = Field(default_factory=TaskOptions,
                                      description="task-specific settings")
    hypotheses: HypothesesConfig = Field(default_factory=HypothesesConfig,
                                         description="multiple hypotheses (winner-takes-all)")
    latent: LatentConfig = Field(default_factory=LatentConfig,
                                 description="a latent z for sampling (cvae or noise)")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig,
                                       description="the generator's Adam optimizer")
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig,
                                         description="checkpointing and resume")
    precision: Precision = Field("32", description="32, 16-mixed (CUDA only) or bf16-mixed")
    accelerator: AcceleratorName = Field("auto", description="auto (a GPU when present), cpu, "
                                         "gpu, ...")
    devices: Annotated[PositiveInt | Literal["auto"], Expect("a positive integer or 'auto'")] = \
        Field(1, description="devices per node (an integer, or 'auto')")
    num_nodes: PositiveInt = Field(1, description="machines taking part (multi-node DDP)")
    strategy: StrategyName = Field("auto", description="auto or ddp (one process per device)")
    val_every: PositiveInt = Field(100, description="validate (and checkpoint) every this many "
                                   "steps; also at the last step")
    sample_every: NonNegativeInt = Field(100, description="save a sample grid every this many "
                                         "steps (0 = never)")
    grad_share_every: NonNegativeInt = Field(50, description="log each loss term's gradient share "
                                             "every this many steps (0 = never)")
    log_every: PositiveInt = Field(10, description="write scalar logs every this many steps")
    progress_bar: Flag = Field(True, description="show Lightning's progress bar")
    check_values: Flag = Field(True, description="the losses' NaN/Inf and range checks")
    deterministic: Annotated[bool | Literal["warn"], Expect("true, false or 'warn'")] = Field(
        "warn", description="lightning.Trainer(deterministic=...): true, false or 'warn'")
    ema_decay: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False),
                         Expect("a number in [0, 1) (0 = no EMA, typical 0.999)")] = Field(
        0.0, description="EMA of the weights with this decay (0 = off; typical 0.999)")
    skip_nonfinite: NonNegativeInt = Field(0, description="0 = a NaN/Inf step stops training; N = "
                                           "skip such steps, stop after N in a row")

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, values: Any) -> Any:
        """``data:`` with nothing under it (YAML ``null``) means the section's defaults."""
        if isinstance(values, Mapping) and any(values.get(key, {}) is None for key in SECTIONS):
            values = {key: ({} if key in SECTIONS and value is None else value)
                      for key, value in values.items()}
        return values


class TrainConfig(TrainSettings):
    """Everything a training run needs; ``config.yaml`` in a run directory is this, resolved.

    Attributes:
        task: ``reconstruct`` (autoencoder, input = target), ``super_resolve`` (input = the
            downscaled target), ``predict_next`` (input = the first ``k`` frames of a clip, target =
            the next frame) or ``colorize`` (input = BT.601 luma, target = colour).
        loss: loss spec for :func:`losslab.loss`, e.g. ``"l1(luma)"`` or
            ``"mse + 0.01*perceptual@ramp(1000,2000)"``.
        steps: optimizer-step budget (the generator's steps; D steps are not counted).
        out: the run directory (``config.yaml``, ``checkpoints/``, ``logs/``, ``samples/``).
        name: a label for reports; empty = the name of ``out``.
        seed: seed for ``lightning.seed_everything`` (model init, data order, crops).
        data: see :class:`DataConfig`.
        model: see :class:`ModelConfig`.
        task_options: see :class:`TaskOptions`.
        hypotheses: see :class:`HypothesesConfig`.
        latent: see :class:`LatentConfig`.
        optimizer: see :class:`OptimizerConfig`.
        checkpoint: see :class:`CheckpointConfig`.
        precision: ``"32"``, ``"16-mixed"`` (CUDA only) or ``"bf16-mixed"``.
        accelerator: ``auto`` (a GPU when present, else the CPU), ``cpu``, ``gpu``, ...
        devices: devices per node (an int, or ``"auto"``).
        num_nodes: machines taking part (multi-node DDP).
        strategy: ``auto`` or ``ddp`` (one process per device; on CPU the gloo backend).
        val_every: validate (and checkpoint) every this many steps; also at the last step.
        sample_every: save a validation sample grid every this many steps (0 = never).
        grad_share_every: log each loss term's gradient share every this many steps (0 = never).
        log_every: write scalar logs every this many steps.
        progress_bar: show Lightning's progress bar on the console.
        check_values: the losses' NaN/Inf and range checks (sync with the device; a NaN then
            stops training with a message naming the term).
        deterministic: passed to ``lightning.Trainer(deterministic=...)``: ``true``, ``false``
            or ``"warn"`` (deterministic algorithms where available, a warning elsewhere).
        ema_decay: keep an exponential moving average of the model's weights with this decay
            (``0`` = off; typical ``0.999``, with a warm-up, see :mod:`losslab.train.ema`);
            validation, sample grids, ``load_run`` and ``losslab evaluate`` then use the
            average, and checkpoints hold both weight sets.
        skip_nonfinite: ``0`` = a NaN/Inf loss or gradient stops training at once; ``N > 0`` =
            skip such steps (counted by cause, see :mod:`losslab.train.nonfinite`) and stop
            after ``N`` in a row.
    """

    model_config = ConfigDict(title="losslab training config")

    # What to_dict() was when every field and combination was last checked (from_dict,
    # validate, or a validated assignment to a checked config), so validate() does not check an
    # unchanged config again (a comparison's config is checked once on its way to fit).
    _checked_as: dict[str, Any] | None = PrivateAttr(default=None)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, value)
            return
        checked = self._checked_as is not None and self._checked_as == self.to_dict()
        super().__setattr__(name, value)  # validate_assignment: the field and _check_together
        if checked:
            self._checked_as = self.to_dict()

    @model_validator(mode="after")
    def _check_together(self) -> TrainConfig:
        """Checks that involve several fields or the registries (run after every field passed)."""
        _check_registered_names(self)
        _check_crop_multiple(self)
        if self.hypotheses.scores and self.hypotheses.count < 2:  # here: count may come later
            raise ValueError("hypotheses.scores needs hypotheses.count >= 2 (a score head "
                             "chooses among hypotheses); set the count or drop scores.")
        processes = self.processes
        if processes is not None and self.data.batch_size % processes:
            raise ValueError(
                f"data.batch_size ({self.data.batch_size}) is the global batch and must split evenly "
                f"over devices * num_nodes = {processes} processes; use a multiple of {processes}."
            )
        if self.latent.enabled and self.hypotheses.count > 1:
            raise ValueError(f"latent.mode {self.latent.mode!r} and hypotheses.count "
                             f"{self.hypotheses.count} are two ways to many outputs; use one "
                             "(hypotheses: {count: 1} or latent: {mode: none}).")
        return self

    # -- checks ---------------------------------------------------------------------------
    def validate(self) -> TrainConfig:  # type: ignore[override]  # pydantic's is deprecated
        """Check every field and their combinations again (after a section was changed in
        place); raise :class:`ConfigError` naming the field, the value and the fix. A config
        whose values are the ones last checked is not checked again."""
        values = self.to_dict()
        if values != self._checked_as:
            type(self).from_dict(values)
            self._checked_as = values
        return self

    @property
    def processes(self) -> int | None:
        """Training processes (``devices * num_nodes``), or ``None`` when ``devices='auto'``."""
        return None if self.devices == "auto" else int(self.devices) * self.num_nodes

    @property
    def run_name(self) -> str:
        """``name``, or the last part of ``out`` when no name is given."""
        return self.name or Path(self.out).name

    # -- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, not tuples) suitable for YAML/JSON, in field order.

        ``data.seed`` is written only when set: a run's config (and so its checkpoints'
        fingerprint) is the same as before the field existed when it is left at ``None``.
        """
        values = plain_data(self.model_dump())
        if values["data"].get("seed") is None:
            values["data"].pop("seed", None)
        return values

    @classmethod
    def from_dict(cls, values: Any, *, origin: str | None = None,
                  positions: Positions | None = None) -> TrainConfig:
        """Build from a nested mapping; any problem raises one :class:`ConfigError` line naming
        the key (unknown keys with the closest valid key), the value and the fix.

        Args:
            origin: the source for messages (``"config file 'c.yaml'"``).
            positions: where each key is in the YAML text, to name the line and column.
        """
        config = validated(cls, values, origin=origin, positions=positions)
        config._checked_as = config.to_dict()
        return config

    def to_yaml(self) -> str:
        """The config as YAML, in field order; a field of :data:`LATER_FIELDS` at its default, and
        the ``latent`` section unless a latent is on, are left out, so an older run's
        ``config.yaml`` is written back byte for byte."""
        values = self.to_dict()
        for key, default in LATER_FIELDS.items():
            section, name = key.split(".")
            if values[section].get(name, _UNSET) == default:
                del values[section][name]
        if not self.latent.enabled:
            values.pop("latent")
        return yaml.safe_dump(values, sort_keys=False)

    def identity(self) -> dict[str, Any]:
        """What a checkpoint of this run may be resumed with: :func:`run_identity` with
        ``resuming=True`` (all fields but :data:`RESUME_SAFE_FIELDS`), flat; fields of
        :data:`LATER_FIELDS` only when they differ from their default, and the ``latent.*``
        fields only when a latent is on, so runs trained before those fields existed keep their
        fingerprint."""
        return run_identity(self.to_dict(), resuming=True)

    def fingerprint(self) -> str:
        """Hash of :meth:`identity`; stored in checkpoints to refuse resuming another config."""
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


#: Fields that may differ between a checkpoint's config and the resuming config: they change
#: where/how fast a run goes or how often it reports, not what it is (a larger ``steps``
#: continues a finished run). ``optimizer.lr`` is here because losslab's own advice after a
#: divergence is to resume with a lower learning rate; the resumed optimizer gets the new value.
RESUME_SAFE_FIELDS = frozenset({
    "steps", "out", "name", "data.num_workers", "accelerator", "devices", "num_nodes", "strategy",
    "val_every", "sample_every", "grad_share_every", "log_every", "checkpoint.resume",
    "progress_bar", "optimizer.lr", "skip_nonfinite",
})


_UNSET = object()

#: Fields added after runs were already on disk, with their defaults: left out of the
#: fingerprint at that default, so a run trained before the field existed still resumes.
LATER_FIELDS: dict[str, Any] = {
    "hypotheses.assignment": "relaxed", "hypotheses.temperature": 0.01,
    "hypotheses.temperature_end": 1e-5, "hypotheses.temperature_schedule": "exponential",
    "hypotheses.schedule_steps": None, "hypotheses.scores": False,
    "hypotheses.score_weight": 1.0,
}


def run_identity(values: Mapping[str, Any], *, resuming: bool = False) -> dict[str, Any]:
    """The one definition of what a run is: its settings, flat (``data.name``; option dicts
    stay whole), less the fields that may differ for the same run.

    Two questions use it, and they differ only in which fields may change:

    - a *finished* run (``DONE``) is reused by a comparison when every field but ``out`` is the
      same (``resuming=False``): ``steps`` and ``optimizer.lr`` count, since a run that
      finished 4 steps is not the 9-step run asked for;
    - an *unfinished* run's checkpoint may be resumed (``resuming=True``) with
      :data:`RESUME_SAFE_FIELDS` changed: a larger ``steps`` continues it, a lower
      ``optimizer.lr`` is losslab's advice after a divergence.

    Args:
        values: nested config values (``TrainConfig.to_dict()``, or the values a comparison
            plans, as JSON keeps them).
        resuming: leave out :data:`RESUME_SAFE_FIELDS` (checkpoint fingerprints), not only
            ``out``.

    Either way a field of :data:`LATER_FIELDS` counts only when it differs from its default,
    and the ``latent.*`` fields only when a latent is on (``latent.mode: none`` changes
    nothing), so runs written before those fields existed keep their identity.
    """
    skip = RESUME_SAFE_FIELDS if resuming else LOCATION_FIELDS
    flat = flatten(values)
    latent_on = flat.get("latent.mode", "none") != "none"
    return {k: v for k, v in flat.items()
            if k not in skip and LATER_FIELDS.get(k, _UNSET) != v
            and (latent_on or not k.startswith("latent."))}


#: Fields that only say where a run is written (a moved comparison's runs stay reusable).
LOCATION_FIELDS = frozenset({"out"})


def _check_registered_names(config: TrainSettings) -> None:
    """Dataset and model names must be registered (their tables are filled on import)."""
    _choice("data.name", config.data.name, tuple(available_datasets()))
    if config.model.name is not None:
        try:
            get_model_class(config.model.name)
        except ValueError:
            _choice("model.name", config.model.name, tuple(available_models()))


def _check_crop_multiple(config: TrainSettings) -> None:
    """The crop must suit the task's default model: ``2**depth`` for the autoencoder and U-Net,
    ``scale`` for super-resolution (its input is the crop divided by ``scale``). A model named
    explicitly checks its own input."""
    if config.model.name is not None:
        return
    crop = config.data.crop_size
    if config.task == "super_resolve":
        multiple, why = config.task_options.scale, f"the input is the crop / scale ({config.task_options.scale})"
    else:
        depth = config.model.options.get("depth", 3)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= 10:
            return  # the model's own check reports a bad depth
        multiple, why = 2**depth, f"the default model halves the image depth={depth} times"
    if crop % multiple:
        lower, higher = crop - crop % multiple, crop - crop % multiple + multiple
        options = f"{lower} or {higher}" if lower else f"{higher}"
        raise ValueError(f"data.crop_size must be a multiple of {multiple} ({why}); got {crop}. "
                         f"Use crop_size {options}.")


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(
            f"{key} must be one of {', '.join(map(repr, choices))}; got {value!r}."
            + suggest(str(value), choices)
        )


def plain_data(value: Any) -> Any:
    """``value`` with tuples turned into lists, recursively: what YAML and JSON write back."""
    if isinstance(value, dict):
        return {k: plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    return value


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'data': {'name': 'x'}}`` → ``{'data.name': 'x'}`` (option dicts stay whole)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and key != "options":
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def config_differences(stored: TrainConfig, current: TrainConfig) -> list[str]:
    """Human-readable ``key: stored -> current`` lines for fields that change what is trained."""
    a, b = stored.identity(), current.identity()
    return [f"{key}: {a.get(key)!r} -> {b.get(key)!r}" for key in sorted(set(a) | set(b))
            if a.get(key) != b.get(key)]


# -- files -------------------------------------------------------------------------------
def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML config file (a run's ``config.yaml`` or a hand-written one)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; give the path of a YAML file.")
    origin = f"config file {str(path)!r}"
    values, positions = load_yaml_with_positions(path.read_text(), what=origin)
    return TrainConfig.from_dict(values or {}, origin=origin, positions=positions)


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as YAML (atomically: a temp file, then rename); returns the path."""
    return write_text_atomic(path, config.to_yaml())


# -- overrides (the CLI) -------------------------------------------------------------------
#: Short override names accepted by :func:`config_from_overrides` (the CLI flags).
OVERRIDE_ALIASES = {
    "data": "data.name", "crop_size": "data.crop_size", "batch_size": "data.batch_size",
    "num_workers": "data.num_workers", "model": "model.name", "lr": "optimizer.lr",
    "hypotheses": "hypotheses.count", "wta": "hypotheses.mode", "epsilon": "hypotheses.epsilon",
    "scale": "task_options.scale", "context_frames": "task_options.context_frames",
    "downscale_method": "task_options.downscale_method", "resume": "checkpoint.resume",
    "latent": "latent.mode",
}


def config_from_overrides(
    base: str | Path | TrainConfig | Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
) -> TrainConfig:
    """A config from a base (YAML path, config, mapping or ``None`` = defaults) plus overrides.

    ``overrides`` keys are field names (``steps``), dotted paths (``data.crop_size``) or the short
    names in :data:`OVERRIDE_ALIASES` (``data`` → ``data.name``, ``lr`` → ``optimizer.lr``).
    ``None`` values are ignored (argparse defaults), strings are converted to the field's type
    (``"1500"`` → 1500), and ``options`` fields accept a YAML mapping string; one key of an
    ``options`` mapping can be set alone (``model.options.width`` = ``"8"``, read as YAML).
    """
    if base is None:
        values = TrainConfig().to_dict()
    elif isinstance(base, TrainConfig):
        values = base.to_dict()
    elif isinstance(base, Mapping):
        values = TrainConfig.from_dict(base).to_dict()
    else:
        values = load_config(base).to_dict()
    flat_defaults = flatten(TrainConfig().to_dict())
    for key, value in overrides.items():
        if value is None:
            continue
        path = OVERRIDE_ALIASES.get(key, key)
        parent, _, option = path.rpartition(".")
        if path not in flat_defaults and option and parent.endswith("options") \
                and parent in flat_defaults:  # `model.options.width=8`: one key of a mapping
            node = values
            for part in parent.split("."):
                node = node[part]
            node[option] = (load_yaml(value, what=f"override {path}={value!r}")
                            if isinstance(value, str) else value)
            continue
        if path not in flat_defaults:
            known = sorted(set(flat_defaults) | set(OVERRIDE_ALIASES))
            raise ConfigError(f"unknown override {key!r}.{suggest(key, known)} "
                              f"Valid names: {', '.join(known)}.")
        node = values
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = _coerce(path, value, flat_defaults[path])
    return TrainConfig.from_dict(values)


def _coerce(path: str, value: Any, default: Any) -> Any:
    if not isinstance(value, str):
        return value
    if path.endswith("options"):  # a YAML syntax error keeps its own message (line, column)
        parsed = load_yaml(value, what=f"override {path}={value!r}") or {}
        if not isinstance(parsed, dict):
            raise ValueError(f"override {path}={value!r} must be a YAML mapping such as "
                             "'{width: 8}'.")
        return parsed
    try:
        lowered = value.lower()
        if path == "deterministic":
            if lowered not in ("true", "false", "warn"):
                raise ValueError("not true, false or warn")
            return lowered if lowered == "warn" else lowered == "true"
        if isinstance(default, bool):
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError("not a boolean")
            return lowered in ("true", "1", "yes")
        if path == "task_options.context_frames":
            return None if lowered in ("none", "null") else int(value)
        if path == "devices":
            return value if value == "auto" else int(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, list):
            return [float(v) for v in value.split(",")]
    except ValueError:
        raise ValueError(
            f"override {path}={value!r} cannot be read as {type(default).__name__} "
            f"(default {default!r})."
        ) from None
    return value
