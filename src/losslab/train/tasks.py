"""Task adapters: how a batch of data becomes ``(input, target)`` and which model a task trains.

The training step is the same for every task; a task only says

- which model it builds by default and with which channel counts (:meth:`Task.model_options`);
- how to split a batch into the model's input and the target (:meth:`Task.split`);
- how to show the input as an RGB image of the target's size in sample grids
  (:meth:`Task.display_input`);
- the trivial answer that needs no training (:meth:`Task.baseline`), the row every comparison
  shows so a reader sees whether training beat doing nothing: bicubic upsampling for
  ``super_resolve``, a copy of the last frame for ``predict_next``, the grey image (luma
  replicated to RGB) for ``colorize``; ``reconstruct`` has none (copying the input is perfect);
- the plausible answers of each target, when the data knows them
  (:meth:`Task.plausible_targets`; ``predict_next`` on ``moving_shapes``: every possible future).

| task | batch item | input | target | default model |
|---|---|---|---|---|
| ``reconstruct`` | image ``(3, H, W)`` | the image | the image | ``autoencoder`` |
| ``super_resolve`` | image ``(3, H, W)`` | ``downscale(image, scale, method)`` | the image | ``super_resolution`` |
| ``predict_next`` | clip ``(T, 3, H, W)`` | frames ``0..k-1`` stacked, ``(3k, H, W)`` | frame ``k`` | ``unet`` |
| ``colorize`` | image ``(3, H, W)`` | BT.601 luma ``(1, H, W)`` | the image | ``unet`` |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.registry import Registry
from losslab.data.degradations import downscale, to_luma
from losslab.train.config import TrainConfig


class Task:
    """Base adapter; subclasses set ``name`` and ``default_model`` and implement :meth:`split`."""

    name: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    #: Dimensions of one batch (with the batch axis): 4 for images, 5 for clips.
    batch_dims: ClassVar[int] = 4
    #: Label of the task's trivial baseline (``""``: none) and what it does, for reports.
    baseline_name: ClassVar[str] = ""
    baseline_description: ClassVar[str] = ""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    def model_options(self, item: Tensor) -> dict[str, Any]:
        """Constructor options this task needs, given one dataset item (user options win)."""
        return {}

    def check_batch(self, batch: Tensor) -> None:
        """Raise a clear error when the data does not fit the task (e.g. images for predict_next)."""
        if batch.dim() != self.batch_dims:
            kind = "clips (N, T, 3, H, W)" if self.batch_dims == 5 else "images (N, 3, H, W)"
            raise ValueError(
                f"task {self.name!r} needs batches of {kind}; dataset {self.config.data.name!r} "
                f"gave shape {tuple(batch.shape)}. Choose a matching dataset (predict_next: "
                "moving_shapes; other tasks: an image dataset such as bundled)."
            )

    def split(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        """``(input, target)`` for the model and the loss."""
        raise NotImplementedError

    def display_input(self, inputs: Tensor, target: Tensor) -> Tensor:
        """The input as ``(N, 3, H, W)`` RGB at the target's size, for sample grids."""
        return inputs

    def baseline(self, inputs: Tensor, target: Tensor) -> Tensor | None:
        """The untrained answer ``(N, 3, H, W)`` in ``[0, 1]`` for model ``inputs`` (``None``: the
        task has no meaningful baseline). ``target`` only gives the output size."""
        return None

    def plausible_targets(self, dataset: Any, indices: Sequence[int]) -> Tensor | None:
        """Every plausible target of items ``indices``: ``(N, P, 3, H, W)``, or ``None`` when the
        data does not know them."""
        return None


class Reconstruct(Task):
    """Autoencoding: the target is the input; the loss decides what the code keeps."""

    name = "reconstruct"
    default_model = "autoencoder"

    def split(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        self.check_batch(batch)
        return batch, batch


class SuperResolve(Task):
    """Upsampling: input = ``downscale(target, scale, method)``."""

    name = "super_resolve"
    default_model = "super_resolution"
    baseline_name = "bicubic"
    baseline_description = ("bicubic upsampling of the low-resolution input (no training), "
                            "clipped to [0, 1]")

    def model_options(self, item: Tensor) -> dict[str, Any]:
        return {"scale": self.config.task_options.scale}

    def split(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        self.check_batch(batch)
        options = self.config.task_options
        return downscale(batch, options.scale, options.downscale_method), batch

    def display_input(self, inputs: Tensor, target: Tensor) -> Tensor:
        return F.interpolate(inputs, size=target.shape[-2:], mode="nearest")

    def baseline(self, inputs: Tensor, target: Tensor) -> Tensor:
        upsampled = F.interpolate(inputs, size=target.shape[-2:], mode="bicubic",
                                  align_corners=False)
        return upsampled.clamp(0.0, 1.0)


class PredictNext(Task):
    """Next-frame prediction: input = ``k`` past frames on channels, target = frame ``k``."""

    name = "predict_next"
    default_model = "unet"
    batch_dims = 5
    baseline_name = "copy last frame"
    baseline_description = "the last input frame, copied as the prediction (no training)"

    def context_frames(self, frames: int) -> int:
        """``k`` for clips of ``frames`` frames (``task_options.context_frames`` or ``T - 1``)."""
        k = self.config.task_options.context_frames
        k = frames - 1 if k is None else k
        if not 1 <= k < frames:
            raise ValueError(
                f"predict_next needs 1 <= context_frames < T; clips have T = {frames} frames and "
                f"task_options.context_frames = {k}. Use at most {frames - 1} (or null for T - 1)."
            )
        return k

    def model_options(self, item: Tensor) -> dict[str, Any]:
        if item.dim() != 4:
            self.check_batch(item.unsqueeze(0))
        return {"in_channels": 3 * self.context_frames(item.shape[0]), "out_channels": 3}

    def split(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        self.check_batch(batch)
        k = self.context_frames(batch.shape[1])
        return batch[:, :k].flatten(1, 2), batch[:, k]

    def display_input(self, inputs: Tensor, target: Tensor) -> Tensor:
        return inputs[:, -3:]  # the last past frame

    def baseline(self, inputs: Tensor, target: Tensor) -> Tensor:
        return inputs[:, -3:].clone()

    def plausible_targets(self, dataset: Any, indices: Sequence[int]) -> Tensor | None:
        """Every possible last frame (``dataset.futures(i)``) when the target is the last frame."""
        futures = getattr(dataset, "futures", None)
        if not callable(futures) or not indices:
            return None
        frames = dataset[indices[0]].shape[0]
        if self.context_frames(frames) != frames - 1:  # the target is not the clip's last frame
            return None
        return torch.stack([futures(i) for i in indices])


class Colorize(Task):
    """Colourisation: input = BT.601 luma ``(N, 1, H, W)``, output = RGB."""

    name = "colorize"
    default_model = "unet"
    baseline_name = "grey (luma only)"
    baseline_description = "the luma input replicated to R, G and B: no colour at all (no training)"

    def model_options(self, item: Tensor) -> dict[str, Any]:
        return {"in_channels": 1, "out_channels": 3}

    def split(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        self.check_batch(batch)
        return to_luma(batch), batch

    def display_input(self, inputs: Tensor, target: Tensor) -> Tensor:
        return inputs.expand(-1, 3, -1, -1)

    def baseline(self, inputs: Tensor, target: Tensor) -> Tensor:
        return inputs.expand(-1, 3, -1, -1).clone()


#: Task adapters by name; ``config.TASKS`` (the names a config accepts) equals its names (tested).
TASKS_TABLE: Registry[type[Task]] = Registry("task")
for _task in (Reconstruct, SuperResolve, PredictNext, Colorize):
    TASKS_TABLE.register(_task.name, _task)


def get_task_class(name: str) -> type[Task]:
    """The adapter class of task ``name``; an unknown name raises with the closest names."""
    return TASKS_TABLE.get(name)


def get_task(config: TrainConfig) -> Task:
    """The adapter for ``config.task``."""
    return get_task_class(config.task)(config)
