"""Task adapters: (input, target) pairs checked against hand-built references."""

from __future__ import annotations

import pytest
import torch

from losslab.train import TrainConfig
from losslab.train.tasks import get_task


def _task(task: str, **task_options: object):
    return get_task(TrainConfig.from_dict({"task": task, "task_options": task_options}))


def test_reconstruct_target_is_input() -> None:
    images = torch.rand(2, 3, 8, 8)
    inputs, target = _task("reconstruct").split(images)
    assert inputs is images and target is images


@pytest.mark.parametrize("scale", [2, 4])
def test_super_resolve_input_is_area_mean_of_target(scale: int) -> None:
    images = torch.rand(2, 3, 16, 16)
    inputs, target = _task("super_resolve", scale=scale, downscale_method="area").split(images)
    blocks = images.unfold(2, scale, scale).unfold(3, scale, scale).mean(dim=(-1, -2))
    torch.testing.assert_close(inputs, blocks)
    assert target is images
    shown = _task("super_resolve", scale=scale).display_input(inputs, target)
    assert shown.shape == images.shape


def test_predict_next_stacks_past_frames_on_channels() -> None:
    clips = torch.rand(2, 4, 3, 8, 8)
    inputs, target = _task("predict_next").split(clips)  # k = T - 1 = 3
    torch.testing.assert_close(inputs, torch.cat([clips[:, 0], clips[:, 1], clips[:, 2]], dim=1))
    torch.testing.assert_close(target, clips[:, 3])
    inputs, target = _task("predict_next", context_frames=2).split(clips)
    assert inputs.shape == (2, 6, 8, 8)
    torch.testing.assert_close(target, clips[:, 2])
    assert _task("predict_next").model_options(clips[0]) == {"in_channels": 9, "out_channels": 3}


def test_predict_next_rejects_images_and_too_many_frames() -> None:
    with pytest.raises(ValueError, match="moving_shapes"):
        _task("predict_next").split(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="at most 3"):
        _task("predict_next", context_frames=4).split(torch.rand(2, 4, 3, 8, 8))


def test_colorize_input_is_bt601_luma() -> None:
    images = torch.rand(2, 3, 8, 8)
    inputs, _ = _task("colorize").split(images)
    expected = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    torch.testing.assert_close(inputs, expected.unsqueeze(1))
    with pytest.raises(ValueError, match="images"):
        _task("colorize").split(torch.rand(2, 4, 3, 8, 8))


def test_display_input_is_rgb_at_target_size() -> None:
    images = torch.rand(2, 3, 8, 8)
    for name in ("reconstruct", "colorize", "super_resolve"):
        task = _task(name)
        inputs, target = task.split(images)
        assert task.display_input(inputs, target).shape == images.shape
