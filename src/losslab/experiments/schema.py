"""Experiment files: one YAML file describes a loss comparison (see ``docs/experiments.md``).

An experiment fixes everything but the loss: the task, the data, the model, the training budget
and the seed are shared, and each entry names one loss spec (plus optional per-entry overrides).
:func:`load_experiment` validates a file and returns an :class:`Experiment`; unknown keys are
rejected with the closest valid key, missing fields name what is needed, and a file's errors name
the line and column.

The schema is the training config's (:mod:`losslab.train.config`), not a copy of it: every field
here is typed with the same ``Annotated`` types as :class:`~losslab.train.TrainConfig` (``Steps``,
``LearningRate``, ``Seed``, ``TaskName``, ...), and ``train_options`` (shared, and per entry) *is*
a :class:`~losslab.train.config.TrainSettings`: a partial training config, checked key by key
when the file is read, of which only the keys given are applied. An entry is thus a partial
override of the run's config: ``steps``, ``batch_size``, ``lr``, ``hypotheses`` and
``model_options`` are the CLI's short names for ``steps``, ``data.batch_size``, ``optimizer.lr``,
``hypotheses.count`` and ``model.options``, and ``train_options`` reaches every other field.
:func:`json_schema` exports both schemas (``losslab schema train|experiment``) so editors can
complete and check the YAML files. Why pydantic: see :mod:`losslab.train.config`.

Example::

    name: colors
    question: What does each loss let the colours do?
    task: reconstruct
    data: bundled
    budget: {steps: 500, batch_size: 64, crop_size: 32, lr: 0.001, seed: 0}
    entries:
      - loss: l1
      - loss: l1(luma)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from losslab.core.registry import suggest
from losslab.core.yaml_io import Positions, load_yaml_with_positions
from losslab.experiments.evaluate import DEFAULT_SAMPLES
from losslab.train.config import (
    BatchSize,
    CropSize,
    DatasetName,
    Flag,
    HypothesisCount,
    LatentConfig,
    LearningRate,
    LossSpec,
    ModelName,
    NonNegativeInt,
    Options,
    PositiveInt,
    Seed,
    Steps,
    TaskName,
    TrainConfig,
    TrainSettings,
    plain_data,
)
from losslab.train.config_errors import ConfigError, Expect, OneLineErrors, validated

#: Named choices for ``perceptual_weights``: the torchvision ImageNet weights, a random init, or
#: ``auto``: ImageNet when the VGG19 file is in the local cache, else random (flagged in the
#: report), so an experiment runs offline and uses the real features where they exist. Any other
#: value must be the path of a VGG19 state dict file (see :func:`check_perceptual_weights`).
PERCEPTUAL_WEIGHT_CHOICES = ("imagenet", "random", "auto")


class ExperimentError(ConfigError):
    """An experiment file that is malformed; the message names the file, the key and the fix."""


def check_perceptual_weights(value: str, base_dir: str | Path | None = None) -> str:
    """``value`` if it is one of :data:`PERCEPTUAL_WEIGHT_CHOICES`, else the absolute path of the
    VGG19 state dict file it names (relative to ``base_dir``, default the working directory).

    Raises:
        ValueError: neither a choice nor an existing file; the message starts with ``must be``
            (the caller names the key) and suggests the closest choice.
    """
    if value in PERCEPTUAL_WEIGHT_CHOICES:
        return value
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(base_dir or Path.cwd()) / path
    if path.is_file():
        return str(path.resolve())
    looks_like_path = bool(re.search(r"[/\\.~]", value))
    reason = f"no such file: {str(path)!r}" if looks_like_path else "not a name, nor a file"
    raise ValueError(
        f"must be one of {', '.join(PERCEPTUAL_WEIGHT_CHOICES)}, or the path of a VGG19 state dict "
        f"file (torchvision format); got {value!r} ({reason})."
        + suggest(value, PERCEPTUAL_WEIGHT_CHOICES)
    )


def _shorthand(value: Any) -> Any:
    """``- l1(luma)`` in a list of entries is short for ``- {loss: l1(luma)}``."""
    return {"loss": value} if isinstance(value, str) else value


def _no_default_in_schema(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # the default is computed (the loss spec), not a constant


Label = Annotated[str, Field(min_length=1), Expect("a non-empty string")]
Text = Annotated[str, Expect("a string")]
PerceptualWeights = Annotated[
    Literal["imagenet", "random", "auto"] | str,
    Expect("one of imagenet, random, auto, or the path of a VGG19 state dict file"),
]


class _ExperimentModel(OneLineErrors):
    """Strict, frozen, unknown keys refused; strings are stripped (YAML ``>`` adds a newline)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, str_strip_whitespace=True)
    what: ClassVar[str] = "experiment"
    error_class: ClassVar[type[ConfigError]] = ExperimentError


class Budget(_ExperimentModel):
    """The shared training budget of every run of an experiment.

    Attributes:
        steps: optimiser steps per run (``>= 1``).
        batch_size: images (or clips) per step.
        crop_size: side of the square training/validation crops, pixels (the target's size).
        lr: Adam learning rate.
        seed: seeds the model initialisation, the data crops and the validation set.
    """

    steps: Steps = Field(description="optimiser steps per run, e.g. budget: {steps: 500}")
    batch_size: BatchSize = Field(16, description="images (or clips) per step")
    crop_size: CropSize = Field(64, description="side of the square crops, pixels")
    lr: LearningRate = Field(1e-3, description="Adam learning rate")
    seed: Seed = Field(0, description="seeds the model initialisation, the crops and the "
                       "validation set")


_SHARED_HINT = ("crop_size and seed are shared by all entries (they decide the validation "
                "images): set them in budget.")


class Launcher(_ExperimentModel):
    """Where and how many of a comparison's runs train at once (``launcher:`` in the file; the
    CLI's ``--launcher``, ``--jobs``, ``--devices-per-job``, ``--partition``, ``--time``,
    ``--gpus-per-job``, ``--mem`` override it). It never changes what a run learns, so finished
    runs are reused whatever launcher started them (see :mod:`losslab.experiments.parallel`).

    Attributes:
        name: ``local`` (this machine) or ``slurm`` (one job per run through ``submitit``).
        jobs: ``local`` only: runs at once (1 = one after another in this process, as before;
            N > 1 = N worker processes, the CPU cores shared by the thread rule, or
            ``devices_per_job`` GPUs each).
        devices_per_job: ``local`` with GPUs: GPUs each job sees (``CUDA_VISIBLE_DEVICES``).
        partition: ``slurm``: the partition (``None``: the cluster's default).
        time: ``slurm``: time limit per job, minutes.
        gpus_per_job: ``slurm``: GPUs per job (0 = CPU only).
        cpus_per_job: ``slurm``: CPU cores per job.
        mem_gb: ``slurm``: memory per job, GB (``None``: the cluster's default).
        folder: ``slurm``: where submitit keeps job scripts and logs (``None``:
            ``DIR/slurm``, relative paths under ``DIR``).
    """

    name: Literal["local", "slurm"] = Field("local", description="local (this machine) or slurm "
                                            "(one job per run, through submitit)")
    jobs: PositiveInt = Field(1, description="local: runs at once (1 = one after another)")
    devices_per_job: PositiveInt = Field(1, description="local with GPUs: GPUs per job")
    partition: Annotated[str, Field(min_length=1), Expect("a partition name")] | None = Field(
        None, description="slurm: partition (default: the cluster's)")
    time: PositiveInt = Field(60, description="slurm: time limit per job, minutes")
    gpus_per_job: NonNegativeInt = Field(0, description="slurm: GPUs per job")
    cpus_per_job: PositiveInt = Field(2, description="slurm: CPU cores per job")
    mem_gb: PositiveInt | None = Field(None, description="slurm: memory per job in GB (default: "
                                       "the cluster's)")
    folder: Annotated[str, Field(min_length=1), Expect("a folder path")] | None = Field(
        None, description="slurm: submitit's job scripts and logs (default: DIR/slurm)")

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from the defaults."""
        return self.model_dump(exclude_defaults=True)


class Entry(_ExperimentModel):
    """One loss of an experiment: its label, loss spec and per-entry overrides.

    Attributes:
        name: the human label shown in tables and figures (default: the loss spec).
        loss: the loss spec, e.g. ``"l1(luma)"`` or ``"mse + 0.001*adversarial"``.
        hypotheses: ``K > 1`` trains a multi-hypothesis head (winner-takes-all over ``loss``).
        latent: a latent ``z`` for sampling (``{mode: cvae, dim: 8, kl_weight:
            '1e-3@ramp(1000,1600)'}``; see :class:`~losslab.train.config.LatentConfig`); only
            the keys given are set, over the shared ``train_options``.
        note: one sentence shown beside the entry in the report.
        metamer: ``False`` leaves the entry out of the report's metamer rows (a row that costs
            minutes and shows nothing another row does not; say why in ``note``).
        steps, batch_size, lr: override the shared budget for this entry only.
        model_options: merged over the experiment's ``model_options`` for this entry.
        train_options: a partial training config merged over the experiment's ``train_options``
            (only the keys given).
    """

    key_hints: ClassVar[dict[str, str]] = {"crop_size": _SHARED_HINT, "seed": _SHARED_HINT}

    name: Label = Field("", description="the label in tables and figures (default: the loss "
                        "spec); unique", json_schema_extra=_no_default_in_schema)
    loss: LossSpec = Field(description="a loss spec such as 'l1(luma)'; see losslab losses")
    hypotheses: HypothesisCount = Field(1, description="K outputs, winner-takes-all (1 = one)")
    latent: LatentConfig = Field(default_factory=LatentConfig, description="a latent z for "
                                 "sampling: {mode: cvae | noise, dim, kl_weight, ...}")
    note: Text = Field("", description="one sentence shown beside the entry in the report")
    metamer: Flag = Field(True, description="false = no metamer row for this entry (say why in "
                          "note)")
    steps: Steps | None = Field(None, description="this entry's steps (default: budget.steps)")
    batch_size: BatchSize | None = Field(None, description="this entry's batch size (default: "
                                         "budget.batch_size)")
    lr: LearningRate | None = Field(None, description="this entry's learning rate (default: "
                                    "budget.lr)")
    model_options: Options = Field(default_factory=dict, description="merged over the "
                                   "experiment's model_options")
    train_options: TrainSettings = Field(default_factory=TrainSettings, description="training "
                                         "config fields for this entry, merged over the shared "
                                         "train_options")

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_the_loss(cls, values: Any) -> Any:
        if isinstance(values, Mapping) and "name" not in values \
                and isinstance(values.get("loss"), str):
            values = {"name": values["loss"], **values}
        return values


EntryItem = Annotated[Entry, BeforeValidator(_shorthand, json_schema_input_type=str | Entry)]


class Experiment(_ExperimentModel):
    """A validated experiment: shared settings plus one :class:`Entry` per loss.

    Attributes:
        name: short identifier (``colors``).
        question: one paragraph shown at the top of the report.
        task: one of :data:`losslab.train.config.TASKS`.
        data: a dataset name for ``data.build_datasets``; ``data_options`` are its extra options.
        model: a model name for ``models.build_model`` (``None``: the task's default model).
        budget: the shared :class:`Budget`.
        perceptual_weights: weights for every ``perceptual`` term that does not name its own
            (``imagenet``, ``random``, ``auto``: ImageNet where the file is cached, else random;
            or the path of a VGG19 state dict file, stored absolute; ``None`` leaves the specs
            as written).
        train_options: a partial training config shared by every run.
        notes: free text shown under the settings in the report.
        samples: samples drawn per validation input when a stochastic entry is evaluated
            (seeded; :func:`losslab.experiments.evaluate_run`); deterministic entries ignore it.
        seeds: training seeds: every entry is trained once per seed, all on the validation set
            of ``budget.seed`` (see :mod:`losslab.experiments.seeds`); ``None`` = one run per
            entry with ``budget.seed``, as before.
        launcher: how the runs are started (:class:`Launcher`: here one at a time, ``local``
            processes side by side, or ``slurm`` jobs).
        entries: the losses to compare, in report order.
        source: the file it was read from (``None`` when built in code; not part of the file).
    """

    model_config = ConfigDict(title="losslab experiment")
    document_name: ClassVar[str] = "the experiment"

    name: Label = Field(description="short identifier (default output folder: runs/<name>)")
    question: Label = Field(description="one paragraph, shown at the top of the report")
    task: TaskName = Field(description="the task every run trains")
    data: DatasetName = Field(description="a data set name (losslab.data.build_datasets)")
    data_options: Options = Field(default_factory=dict, description="extra build_datasets options, "
                                  "e.g. {path: photos/}")
    model: ModelName = Field(None, description="a model name; omitted = the task's default model")
    model_options: Options = Field(default_factory=dict, description="build_model options")
    budget: Budget = Field(description="the shared training budget; only steps is required")
    perceptual_weights: PerceptualWeights | None = Field(
        None, description="weights of every perceptual term whose spec names none: imagenet, "
        "random, auto (imagenet where the VGG19 file is cached, else random, flagged) or the path "
        "of a VGG19 state dict file (relative to the experiment file)")
    train_options: TrainSettings = Field(default_factory=TrainSettings, description="any other "
                                         "training config fields (nested), shared by every run")
    notes: Text = Field("", description="shown under the settings in the report")
    samples: PositiveInt = Field(DEFAULT_SAMPLES, description="samples drawn per validation "
                                 "input of each stochastic entry at evaluation (seeded)")
    seeds: Annotated[list[Seed], Field(min_length=1), Expect(
        "a non-empty list of distinct seeds such as [0, 1, 2]")] | None = Field(
        None, description="train every entry once per seed (same validation set: budget.seed's); "
        "omitted = one run with budget.seed")
    launcher: Launcher = Field(default_factory=lambda: Launcher(), description="where the runs "
                               "train: one at a time here (default), local processes or slurm")
    entries: Annotated[list[EntryItem], Field(min_length=1), Expect(
        "a non-empty list of losses, e.g. entries: [{loss: l1}, {loss: mse}]")] = Field(
        description="the losses to compare, in report order")

    _source: str | None = PrivateAttr(None)

    @field_validator("perceptual_weights")
    @classmethod
    def _weights_choice_or_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        base_dir = (info.context or {}).get("base_dir")
        return None if value is None else check_perceptual_weights(value, base_dir)

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            repeated = sorted({seed for seed in value if value.count(seed) > 1})
            raise ValueError(f"must be distinct; {', '.join(map(str, repeated))} is given "
                             "twice.")
        return value

    @property
    def training_seeds(self) -> list[int]:
        """The seeds every entry trains with (``seeds``, or ``[budget.seed]``)."""
        return list(self.seeds) if self.seeds else [self.budget.seed]

    @model_validator(mode="after")
    def _distinct_names(self) -> Experiment:
        seen: dict[str, int] = {}
        for index, entry in enumerate(self.entries):
            if entry.name in seen:
                raise ValueError(
                    f"entries[{seen[entry.name]}] and entries[{index}] are both named "
                    f"{entry.name!r}; give one a distinct 'name'."
                )
            seen[entry.name] = index
        return self

    @property
    def source(self) -> str | None:
        """The file the experiment was read from (``None`` when built in code)."""
        return self._source

    def with_source(self, source: str | None) -> Experiment:
        """A copy that names ``source`` as its origin."""
        copied = self.model_copy()
        copied._source = source
        return copied

    def to_dict(self) -> dict[str, Any]:
        """The experiment as a plain dict that :func:`experiment_from_dict` reads back."""
        result: dict[str, Any] = {
            "name": self.name,
            "question": self.question,
            "task": self.task,
            "data": self.data,
            "data_options": copy.deepcopy(self.data_options),
            "model": self.model,
            "model_options": copy.deepcopy(self.model_options),
            "budget": self.budget.model_dump(),
            "perceptual_weights": self.perceptual_weights,
            "train_options": settings_overrides(self.train_options),
            "notes": self.notes,
            "samples": self.samples if self.samples != DEFAULT_SAMPLES else None,
            "seeds": list(self.seeds) if self.seeds else None,
            "launcher": self.launcher.to_dict(),
            "entries": [],
        }
        for entry in self.entries:
            item: dict[str, Any] = {"name": entry.name, "loss": entry.loss}
            if entry.hypotheses != 1:
                item["hypotheses"] = entry.hypotheses
            if entry.latent.model_fields_set:
                item["latent"] = plain_data(entry.latent.model_dump(exclude_unset=True))
            if entry.note:
                item["note"] = entry.note
            if not entry.metamer:
                item["metamer"] = False
            for key in ("steps", "batch_size", "lr"):
                if getattr(entry, key) is not None:
                    item[key] = getattr(entry, key)
            if entry.model_options:
                item["model_options"] = copy.deepcopy(entry.model_options)
            if entry.train_options.model_fields_set:
                item["train_options"] = settings_overrides(entry.train_options)
            result["entries"].append(item)
        return {key: value for key, value in result.items() if value not in (None, "", {})}

    def to_yaml(self) -> str:
        """The experiment as YAML text (what ``DIR/experiment.yaml`` holds)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)


def settings_overrides(settings: TrainSettings) -> dict[str, Any]:
    """The keys a partial training config sets, as a plain nested dict (lists, not tuples)."""
    return plain_data(settings.model_dump(exclude_unset=True))


# -- validation ---------------------------------------------------------------------------------


def experiment_from_dict(raw: Any, *, source: str | None = None,
                         positions: Positions | None = None) -> Experiment:
    """Validate a parsed experiment mapping and return an :class:`Experiment`.

    Args:
        source: the file it came from (messages start with it; relative ``perceptual_weights``
            paths are read from its folder).
        positions: where each key is in the file (from
            :func:`~losslab.core.yaml_io.load_yaml_with_positions`), for line and column.

    Raises:
        ExperimentError: one line: unknown keys (with the closest valid key), missing fields,
            wrong types or values (with the value given), duplicate entry names.
    """
    base_dir = Path(source).parent if source and Path(source).is_file() else None
    experiment = validated(Experiment, raw, what="experiment", origin=source or "experiment",
                           positions=positions, context={"base_dir": base_dir},
                           error=ExperimentError)
    return experiment.with_source(source)


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate one experiment YAML file."""
    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"experiment file {str(path)!r} does not exist.")
    try:
        raw, positions = load_yaml_with_positions(path.read_text(encoding="utf-8"),
                                                  what=f"experiment file {str(path)!r}")
    except ValueError as error:  # one line: where and what (the CLI prints no traceback)
        raise ExperimentError(str(error)) from None
    return experiment_from_dict(raw, source=str(path), positions=positions)


# -- JSON Schema ----------------------------------------------------------------------------------

#: What ``losslab schema KIND`` exports: the training config (``config.yaml``, ``--config``) and
#: the experiment file (``losslab compare FILE``).
SCHEMA_KINDS: dict[str, type[BaseModel]] = {"train": TrainConfig, "experiment": Experiment}


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a training config (``"train"``) or an experiment file
    (``"experiment"``), for editors: unknown keys are refused (``additionalProperties: false``),
    and every field has its type, bounds, choices, default and a description.

    Cross-field rules (a crop that suits the model, the batch splitting over the processes,
    registered data set and model names, existing weight files) are checked by losslab only.
    """
    if kind not in SCHEMA_KINDS:
        raise ValueError(f"unknown schema {kind!r}.{suggest(kind, SCHEMA_KINDS)} Schemas: "
                         f"{', '.join(SCHEMA_KINDS)}.")
    schema = _first_paragraphs(SCHEMA_KINDS[kind].model_json_schema())
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _first_paragraphs(node: Any) -> Any:
    """Model descriptions come from class docstrings: an editor's hover shows the first
    paragraph (the ``Attributes:`` part repeats the fields' own descriptions)."""
    if isinstance(node, dict):
        return {key: (" ".join(value.split("\n\n")[0].split())
                      if key == "description" and isinstance(value, str)
                      else _first_paragraphs(value)) for key, value in node.items()}
    if isinstance(node, list):
        return [_first_paragraphs(item) for item in node]
    return node


# -- shipped experiments ------------------------------------------------------------------------


def _packaged_files() -> dict[str, Any]:
    folder = resources.files("losslab.experiments").joinpath("files")
    return {
        item.name[: -len(".yaml")]: item
        for item in folder.iterdir()
        if item.name.endswith(".yaml")
    }


def list_experiments() -> list[str]:
    """Names of the experiments shipped with losslab (``losslab compare NAME``), sorted."""
    return sorted(_packaged_files())


def resolve_experiment(name_or_path: str | Path | Experiment) -> Experiment:
    """Load a shipped experiment by name (``"colors"``) or any experiment file by path.

    A string that names an existing file is read as a path; otherwise it must be a shipped name.
    """
    if isinstance(name_or_path, Experiment):
        return name_or_path
    path = Path(name_or_path)
    if path.is_file():
        return load_experiment(path)
    text = str(name_or_path)
    shipped = _packaged_files()
    if text in shipped:
        with resources.as_file(shipped[text]) as real:
            experiment = load_experiment(real)
        return experiment.with_source(f"{text} (shipped with losslab)")
    names = tuple(shipped)
    looks_like_path = bool(re.search(r"[/\\]|\.ya?ml$", text))
    reason = "no such file" if looks_like_path else "not a shipped experiment or a file"
    raise ExperimentError(
        f"experiment {text!r}: {reason}.{suggest(text, names)} Shipped experiments: "
        f"{', '.join(sorted(names))}; or pass the path of a YAML file."
    )
