"""Experiment files: one YAML file describes a loss comparison (see ``docs/experiments.md``).

An experiment fixes everything but the loss: the task, the data, the model, the training budget
and the seed are shared, and each entry names one loss spec (plus optional per-entry overrides).
:func:`load_experiment` validates a file and returns an :class:`Experiment`; unknown keys are
rejected with the closest valid key, missing fields name what is needed.

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
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from losslab.core.registry import suggest
from losslab.core.yaml_io import describe_yaml_error

#: Tasks the trainer knows (``train.TrainConfig.task``).
KNOWN_TASKS = ("reconstruct", "super_resolve", "predict_next", "colorize")

#: Where ``perceptual_weights`` may point: the torchvision ImageNet weights, a random init, or
#: ``auto``: ImageNet when the VGG19 file is in the local cache, else random (flagged in the
#: report), so an experiment runs offline and uses the real features where they exist.
PERCEPTUAL_WEIGHT_CHOICES = ("imagenet", "random", "auto")

_TOP_LEVEL_KEYS = (
    "name", "question", "task", "data", "data_options", "model", "model_options", "budget",
    "perceptual_weights", "train_options", "notes", "entries",
)
_REQUIRED_TOP_LEVEL = ("name", "question", "task", "data", "budget", "entries")
_BUDGET_KEYS = ("steps", "batch_size", "crop_size", "lr", "seed")
_ENTRY_KEYS = (
    "name", "loss", "hypotheses", "note", "steps", "batch_size", "lr", "model_options",
    "train_options",
)
#: Budget keys an entry may override. ``crop_size`` and ``seed`` stay shared: they decide the
#: validation crops, and every run must be judged on the same images.
_ENTRY_BUDGET_OVERRIDES = ("steps", "batch_size", "lr")


class ExperimentError(ValueError):
    """An experiment file that is malformed; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Budget:
    """The shared training budget of every run of an experiment.

    Attributes:
        steps: optimiser steps per run (``>= 1``).
        batch_size: images (or clips) per step.
        crop_size: side of the square training/validation crops, pixels (the target's size).
        lr: Adam learning rate.
        seed: seeds the model initialisation, the data crops and the validation set.
    """

    steps: int
    batch_size: int = 16
    crop_size: int = 64
    lr: float = 1e-3
    seed: int = 0


@dataclass(frozen=True)
class Entry:
    """One loss of an experiment: its label, loss spec and per-entry overrides.

    Attributes:
        name: the human label shown in tables and figures (default: the loss spec).
        loss: the loss spec, e.g. ``"l1(luma)"`` or ``"mse + 0.001*adversarial"``.
        hypotheses: ``K > 1`` trains a multi-hypothesis head (winner-takes-all over ``loss``).
        note: one sentence shown beside the entry in the report.
        steps, batch_size, lr: override the shared budget for this entry only.
        model_options, train_options: merged over the experiment's options for this entry.
    """

    name: str
    loss: str
    hypotheses: int = 1
    note: str = ""
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    train_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: shared settings plus one :class:`Entry` per loss.

    Attributes:
        name: short identifier (``colors``).
        question: one paragraph shown at the top of the report.
        task: one of :data:`KNOWN_TASKS`.
        data: a dataset name for ``data.build_datasets``; ``data_options`` are its extra options.
        model: a model name for ``models.build_model`` (``None``: the task's default model).
        budget: the shared :class:`Budget`.
        perceptual_weights: weights for every ``perceptual`` term that does not name its own
            (``imagenet``, ``random`` or ``auto``: ImageNet where the file is cached, else
            random; ``None`` leaves the specs as written).
        train_options: extra ``TrainConfig`` fields shared by every run.
        notes: free text shown under the settings in the report.
        entries: the losses to compare, in report order.
        source: the file it was read from (``None`` when built in code).
    """

    name: str
    question: str
    task: str
    data: str
    budget: Budget
    entries: tuple[Entry, ...]
    data_options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    perceptual_weights: str | None = None
    train_options: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    source: str | None = None

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
            "budget": {key: getattr(self.budget, key) for key in _BUDGET_KEYS},
            "perceptual_weights": self.perceptual_weights,
            "train_options": copy.deepcopy(self.train_options),
            "notes": self.notes,
            "entries": [],
        }
        for entry in self.entries:
            item: dict[str, Any] = {"name": entry.name, "loss": entry.loss}
            if entry.hypotheses != 1:
                item["hypotheses"] = entry.hypotheses
            if entry.note:
                item["note"] = entry.note
            for key in _ENTRY_BUDGET_OVERRIDES:
                if getattr(entry, key) is not None:
                    item[key] = getattr(entry, key)
            if entry.model_options:
                item["model_options"] = copy.deepcopy(entry.model_options)
            if entry.train_options:
                item["train_options"] = copy.deepcopy(entry.train_options)
            result["entries"].append(item)
        return {key: value for key, value in result.items() if value not in (None, "", {})}

    def to_yaml(self) -> str:
        """The experiment as YAML text (what ``DIR/experiment.yaml`` holds)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)


# -- validation ---------------------------------------------------------------------------------


def _suggest(key: str, known: tuple[str, ...]) -> str:
    return suggest(key, known)


def _check_keys(mapping: Mapping[str, Any], known: tuple[str, ...], where: str, origin: str) -> None:
    for key in mapping:
        if key not in known:
            raise ExperimentError(
                f"{origin}: unknown key {key!r} in {where}.{_suggest(str(key), known)} "
                f"Valid keys: {', '.join(known)}."
            )


def _require_mapping(value: Any, where: str, origin: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ExperimentError(
            f"{origin}: {where} must be a mapping (key: value lines); got {type(value).__name__} "
            f"{value!r}."
        )
    return dict(value)


def _require_text(value: Any, where: str, origin: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ExperimentError(
            f"{origin}: {where} must be a non-empty string; got {value!r}."
        )
    return value.strip()


def _positive_int(value: Any, where: str, origin: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ExperimentError(f"{origin}: {where} must be an integer >= {minimum}; got {value!r}.")
    return value


def _positive_float(value: Any, where: str, origin: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(float(value)) and float(value) > 0
    ):
        raise ExperimentError(f"{origin}: {where} must be a positive number; got {value!r}.")
    return float(value)


def _budget(raw: Any, origin: str) -> Budget:
    values = _require_mapping(raw, "budget", origin)
    _check_keys(values, _BUDGET_KEYS, "budget", origin)
    if "steps" not in values:
        raise ExperimentError(f"{origin}: budget needs 'steps' (optimiser steps per run), e.g. "
                              "budget: {steps: 500, batch_size: 64, crop_size: 32}.")
    kwargs: dict[str, Any] = {"steps": _positive_int(values["steps"], "budget.steps", origin)}
    if "batch_size" in values:
        kwargs["batch_size"] = _positive_int(values["batch_size"], "budget.batch_size", origin)
    if "crop_size" in values:
        kwargs["crop_size"] = _positive_int(values["crop_size"], "budget.crop_size", origin,
                                            minimum=4)
    if "lr" in values:
        kwargs["lr"] = _positive_float(values["lr"], "budget.lr", origin)
    if "seed" in values:
        kwargs["seed"] = _positive_int(values["seed"], "budget.seed", origin, minimum=0)
    return Budget(**kwargs)


def _entry(raw: Any, index: int, origin: str) -> Entry:
    where = f"entries[{index}]"
    if isinstance(raw, str):  # shorthand: "- l1(luma)"
        raw = {"loss": raw}
    values = _require_mapping(raw, where, origin)
    _check_keys(values, _ENTRY_KEYS, where, origin)
    if "loss" not in values:
        hint = ""
        if "crop_size" in values or "seed" in values:
            hint = " (crop_size and seed are shared by all entries: set them in budget)"
        raise ExperimentError(
            f"{origin}: {where} needs a 'loss' spec such as 'l1(luma)'{hint}."
        )
    loss = _require_text(values["loss"], f"{where}.loss", origin)
    name = _require_text(values.get("name", loss), f"{where}.name", origin)
    kwargs: dict[str, Any] = {"name": name, "loss": loss}
    if "hypotheses" in values:
        kwargs["hypotheses"] = _positive_int(values["hypotheses"], f"{where}.hypotheses", origin)
    if "note" in values:
        kwargs["note"] = _require_text(values["note"], f"{where}.note", origin, allow_empty=True)
    for key in ("steps", "batch_size"):
        if key in values:
            kwargs[key] = _positive_int(values[key], f"{where}.{key}", origin)
    if "lr" in values:
        kwargs["lr"] = _positive_float(values["lr"], f"{where}.lr", origin)
    for key in ("model_options", "train_options"):
        if key in values:
            kwargs[key] = _require_mapping(values[key], f"{where}.{key}", origin)
    return Entry(**kwargs)


def experiment_from_dict(raw: Any, *, source: str | None = None) -> Experiment:
    """Validate a parsed experiment mapping and return an :class:`Experiment`.

    Raises:
        ExperimentError: unknown keys (with the closest valid key), missing fields, wrong types,
            duplicate entry names, an unknown task or ``perceptual_weights`` value.
    """
    origin = source or "experiment"
    values = _require_mapping(raw, "the experiment file (top level)", origin)
    _check_keys(values, _TOP_LEVEL_KEYS, "the top level", origin)
    missing = [key for key in _REQUIRED_TOP_LEVEL if key not in values]
    if missing:
        raise ExperimentError(
            f"{origin}: missing required field(s): {', '.join(missing)}. An experiment needs "
            f"{', '.join(_REQUIRED_TOP_LEVEL)} (see docs/experiments.md)."
        )
    task = _require_text(values["task"], "task", origin)
    if task not in KNOWN_TASKS:
        raise ExperimentError(
            f"{origin}: unknown task {task!r}.{_suggest(task, KNOWN_TASKS)} "
            f"Tasks: {', '.join(KNOWN_TASKS)}."
        )
    weights = values.get("perceptual_weights")
    if weights is not None and weights not in PERCEPTUAL_WEIGHT_CHOICES:
        raise ExperimentError(
            f"{origin}: perceptual_weights must be one of {', '.join(PERCEPTUAL_WEIGHT_CHOICES)}; "
            f"got {weights!r}."
        )
    raw_entries = values["entries"]
    if not isinstance(raw_entries, list) or not raw_entries:
        raise ExperimentError(
            f"{origin}: entries must be a non-empty list of losses, e.g. "
            f"entries: [{{loss: l1}}, {{loss: mse}}]; got {raw_entries!r}."
        )
    entries = tuple(_entry(item, i, origin) for i, item in enumerate(raw_entries))
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if entry.name in seen:
            raise ExperimentError(
                f"{origin}: entries[{seen[entry.name]}] and entries[{i}] are both named "
                f"{entry.name!r}; give one a distinct 'name'."
            )
        seen[entry.name] = i
    model = values.get("model")
    return Experiment(
        name=_require_text(values["name"], "name", origin),
        question=_require_text(values["question"], "question", origin),
        task=task,
        data=_require_text(values["data"], "data", origin),
        data_options=_require_mapping(values.get("data_options"), "data_options", origin),
        model=None if model is None else _require_text(model, "model", origin),
        model_options=_require_mapping(values.get("model_options"), "model_options", origin),
        budget=_budget(values["budget"], origin),
        perceptual_weights=weights,
        train_options=_require_mapping(values.get("train_options"), "train_options", origin),
        notes=_require_text(values.get("notes", ""), "notes", origin, allow_empty=True),
        entries=entries,
        source=source,
    )


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate one experiment YAML file."""
    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"experiment file {str(path)!r} does not exist.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:  # one line: where and what (the CLI prints no traceback)
        raise ExperimentError(f"experiment file {str(path)!r} is not valid YAML "
                              f"({describe_yaml_error(error)}); check the indentation and quote "
                              "loss specs that contain ':' or '#'.") from None
    return experiment_from_dict(raw, source=str(path))


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
        return _with_source(experiment, f"{text} (shipped with losslab)")
    names = tuple(shipped)
    looks_like_path = bool(re.search(r"[/\\]|\.ya?ml$", text))
    reason = "no such file" if looks_like_path else "not a shipped experiment or a file"
    raise ExperimentError(
        f"experiment {text!r}: {reason}.{_suggest(text, names)} Shipped experiments: "
        f"{', '.join(sorted(names))}; or pass the path of a YAML file."
    )


def _with_source(experiment: Experiment, source: str) -> Experiment:
    from dataclasses import replace

    return replace(experiment, source=source)
