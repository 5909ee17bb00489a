"""The training configuration: one dataclass tree that fully describes a run, stored as YAML.

A run directory's ``config.yaml`` is the full resolved :class:`TrainConfig`, so
``losslab train --config runs/x/config.yaml`` re-runs it exactly. Unknown keys, tasks, precisions
or strategies raise a ``ValueError`` that names the closest valid choice.

Example YAML (every key optional; omitted keys take the defaults below)::

    task: reconstruct
    loss: "l1(luma) + 0.01*perceptual@ramp(1000,2000)"
    steps: 1500
    out: runs/luma
    data: {name: bundled, crop_size: 64, batch_size: 8}
    hypotheses: {count: 1}
    optimizer: {lr: 0.001}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from losslab.core.atomic import write_text_atomic
from losslab.core.registry import suggest
from losslab.core.yaml_io import load_yaml

TASKS = ("reconstruct", "super_resolve", "predict_next", "colorize")
PRECISIONS = ("32", "16-mixed", "bf16-mixed")
STRATEGIES = ("auto", "ddp")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
WTA_MODES = ("relaxed", "wta")
DOWNSCALE_METHODS = ("bicubic", "area")


def _suggest(name: str, known: tuple[str, ...] | list[str]) -> str:
    return suggest(str(name), list(known))


@dataclass
class DataConfig:
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
    """

    name: str = "bundled"
    crop_size: int = 64
    batch_size: int = 8
    num_workers: int = 0
    val_items: int = 16
    sample_count: int = 6
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Which network to train.

    Attributes:
        name: model name for :func:`losslab.models.build_model`; ``None`` picks the task's model
            (reconstruct: ``autoencoder``, super_resolve: ``super_resolution``, predict_next and
            colorize: ``unet``).
        options: extra keyword arguments for ``build_model`` (e.g. ``{width: 32, depth: 3}``);
            the channel counts / scale a task needs are filled in by the task.
    """

    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskOptions:
    """Task-specific settings (each task reads only its own).

    Attributes:
        scale: super_resolve: the downscaling factor of the input (2 or 4).
        downscale_method: super_resolve: how the low-resolution input is made from the target
            (``bicubic`` or ``area``, see :func:`losslab.data.degradations.downscale`).
        context_frames: predict_next: how many past frames ``k`` the model sees (stacked on
            channels, ``3k`` input channels); the target is frame ``k`` (0-based) of each clip.
            ``None`` = every frame but the last (``k = T - 1``).
    """

    scale: int = 2
    downscale_method: str = "bicubic"
    context_frames: int | None = None


@dataclass
class HypothesesConfig:
    """Multiple hypotheses (winner-takes-all training).

    Attributes:
        count: ``K``, the number of outputs per input; 1 = an ordinary single-output model.
            ``K > 1`` wraps the model in ``MultiHypothesisHead`` and the loss in
            ``MultiHypothesisLoss``.
        mode: ``relaxed`` (the best hypothesis per sample gets ``1 - epsilon`` of the loss, the
            others share ``epsilon``, so none of them dies) or ``wta`` (only the best one).
        epsilon: the relaxed-WTA share given to the non-winning hypotheses, in ``[0, 1)``.
    """

    count: int = 1
    mode: str = "relaxed"
    epsilon: float = 0.05


@dataclass
class OptimizerConfig:
    """The generator's optimizer (Adam).

    Attributes:
        lr: learning rate.
        betas: Adam's ``(beta1, beta2)``.
        weight_decay: L2 weight decay (0 = none).
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0


@dataclass
class CheckpointConfig:
    """Checkpointing and resume.

    Checkpoints are written at every validation (every ``val_every`` steps, and at the last step):
    ``checkpoints/last.ckpt`` always, ``checkpoints/best.ckpt`` when the validation loss improves.

    Attributes:
        save_best: keep ``best.ckpt`` (lowest ``val/loss``).
        resume: when ``checkpoints/last.ckpt`` exists in ``out``, continue from it (the stored
            config must match, apart from the fields in :data:`RESUME_SAFE_FIELDS`).
    """

    save_best: bool = True
    resume: bool = True


@dataclass
class TrainConfig:
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

    task: str = "reconstruct"
    loss: str = "l1"
    steps: int = 1000
    out: str = "runs/run"
    name: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    task_options: TaskOptions = field(default_factory=TaskOptions)
    hypotheses: HypothesesConfig = field(default_factory=HypothesesConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    precision: str = "32"
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    val_every: int = 100
    sample_every: int = 100
    grad_share_every: int = 50
    log_every: int = 10
    progress_bar: bool = True
    check_values: bool = True
    deterministic: bool | str = "warn"
    ema_decay: float = 0.0
    skip_nonfinite: int = 0

    def __post_init__(self) -> None:
        self.validate()

    # -- checks ---------------------------------------------------------------------------
    def validate(self) -> TrainConfig:
        """Check every field; raise ``ValueError`` naming the field, the value and the fix."""
        _choice("task", self.task, TASKS)
        _choice("precision", str(self.precision), PRECISIONS)
        self.precision = str(self.precision)
        _choice("strategy", self.strategy, STRATEGIES)
        _choice("accelerator", self.accelerator, ACCELERATORS)
        _choice("hypotheses.mode", self.hypotheses.mode, WTA_MODES)
        _choice("task_options.downscale_method", self.task_options.downscale_method,
                DOWNSCALE_METHODS)
        if not isinstance(self.loss, str) or not self.loss.strip():
            raise ValueError(f"loss must be a non-empty spec string such as 'l1(luma)'; got {self.loss!r}.")
        for key, value, low in (
            ("steps", self.steps, 1), ("data.crop_size", self.data.crop_size, 1),
            ("data.batch_size", self.data.batch_size, 1), ("data.num_workers", self.data.num_workers, 0),
            ("data.val_items", self.data.val_items, 1), ("data.sample_count", self.data.sample_count, 1),
            ("hypotheses.count", self.hypotheses.count, 1), ("num_nodes", self.num_nodes, 1),
            ("val_every", self.val_every, 1), ("sample_every", self.sample_every, 0),
            ("grad_share_every", self.grad_share_every, 0), ("log_every", self.log_every, 1),
            ("skip_nonfinite", self.skip_nonfinite, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key} must be an integer >= {low}; got {value!r}.")
        frames = self.task_options.context_frames
        if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
            raise ValueError(f"task_options.context_frames must be null or an integer >= 1; got {frames!r}.")
        if self.task_options.scale not in (2, 4):
            raise ValueError(f"task_options.scale must be 2 or 4; got {self.task_options.scale!r}.")
        if not _is_number(self.hypotheses.epsilon) or not 0.0 <= self.hypotheses.epsilon < 1.0:
            raise ValueError(f"hypotheses.epsilon must lie in [0, 1); got {self.hypotheses.epsilon!r}.")
        if isinstance(self.ema_decay, bool) or not isinstance(self.ema_decay, (int, float)) \
                or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be a number in [0, 1) (0 = no EMA, typical 0.999); "
                             f"got {self.ema_decay!r}.")
        _finite("optimizer.lr", self.optimizer.lr, low=0.0, low_open=True, example="1e-3")
        _finite("optimizer.weight_decay", self.optimizer.weight_decay, low=0.0, example="0")
        betas = self.optimizer.betas
        if len(betas) != 2 or not all(_is_number(b) and 0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"optimizer.betas must be two numbers in [0, 1) such as [0.9, 0.999]; "
                             f"got {list(betas)!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) \
                or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer from 0 to {MAX_SEED} (2**32 - 1); got "
                             f"{self.seed!r}.")
        for key, flag in (("progress_bar", self.progress_bar), ("check_values", self.check_values),
                          ("checkpoint.resume", self.checkpoint.resume),
                          ("checkpoint.save_best", self.checkpoint.save_best)):
            if not isinstance(flag, bool):
                raise ValueError(f"{key} must be true or false; got {flag!r}.")
        if self.devices != "auto" and (isinstance(self.devices, bool)
                                       or not isinstance(self.devices, int) or self.devices < 1):
            raise ValueError(f"devices must be a positive integer or 'auto'; got {self.devices!r}.")
        if self.deterministic not in (True, False, "warn"):
            raise ValueError(f"deterministic must be true, false or 'warn'; got {self.deterministic!r}.")
        if not isinstance(self.data.options, dict) or not isinstance(self.model.options, dict):
            raise ValueError("data.options and model.options must be mappings (YAML dicts).")
        _check_registered_names(self)
        _check_crop_multiple(self)
        processes = self.processes
        if processes is not None and self.data.batch_size % processes:
            raise ValueError(
                f"data.batch_size ({self.data.batch_size}) is the global batch and must split evenly "
                f"over devices * num_nodes = {processes} processes; use a multiple of {processes}."
            )
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
        """Plain nested dict (lists, not tuples) suitable for YAML/JSON."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a nested mapping; unknown keys raise with the closest valid key."""
        return _build(cls, values, prefix="")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def identity(self) -> dict[str, Any]:
        """The fields that change what is trained (all but :data:`RESUME_SAFE_FIELDS`), flat."""
        return {k: v for k, v in flatten(self.to_dict()).items() if k not in RESUME_SAFE_FIELDS}

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


def _check_registered_names(config: TrainConfig) -> None:
    """Dataset and model names must be registered (imports are lazy: config has no heavy deps)."""
    from losslab.data import available_datasets
    from losslab.models import available_models
    from losslab.models.registry import get_model_class

    _choice("data.name", config.data.name, tuple(available_datasets()))
    if config.model.name is not None:
        try:
            get_model_class(config.model.name)
        except ValueError:
            _choice("model.name", config.model.name, tuple(available_models()))


#: Largest seed ``lightning.seed_everything`` accepts (numpy's limit).
MAX_SEED = 2**32 - 1


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _finite(key: str, value: Any, *, low: float, low_open: bool = False, example: str) -> None:
    """A finite number above ``low`` (``.inf`` from YAML, strings and booleans are refused)."""
    if not _is_number(value) or value < low or (low_open and value == low):
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        raise ValueError(f"{key} must be a finite number {bound} such as {example}; got {value!r}.")


def _check_crop_multiple(config: TrainConfig) -> None:
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
            + _suggest(str(value), choices)
        )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, values: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(values, Mapping):
        raise ValueError(f"{prefix.rstrip('.') or 'config'} must be a mapping; got {values!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ValueError(
                f"unknown config key {prefix + str(key)!r}.{_suggest(str(key), list(fields))} "
                f"Valid keys{' under ' + prefix.rstrip('.') if prefix else ''}: {', '.join(fields)}."
            )
        factory = fields[key].default_factory
        default = factory() if factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[key] = _build(type(default), value or {}, prefix + key + ".")
        elif key == "betas":
            kwargs[key] = tuple(float(v) for v in value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


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
        raise ValueError(f"config file {str(path)!r} does not exist; give the path of a YAML file.")
    values = load_yaml(path.read_text(), what=f"config file {str(path)!r}") or {}
    return TrainConfig.from_dict(values)


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
            raise ValueError(f"unknown override {key!r}.{_suggest(key, known)} "
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
