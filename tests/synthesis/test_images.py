"""synthesis.images: target images from files or bundled photos, the square resize, and the
noise, blur and photo starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from losslab.synthesis import load_image
from losslab.synthesis.images import blur_sigma, make_start, square_resize


def test_load_image_keeps_grey_files_grey(tmp_path: Path) -> None:
    pixels = (torch.linspace(0, 1, 40 * 30).reshape(30, 40) * 255).round().byte().numpy()
    Image.fromarray(pixels, "L").save(tmp_path / "grey.png")
    image = load_image(tmp_path / "grey.png", 16)
    assert image.shape == (1, 1, 16, 16)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    Image.fromarray(pixels, "L").convert("RGB").save(tmp_path / "rgb.png")
    assert load_image(tmp_path / "rgb.png", 16).shape == (1, 3, 16, 16)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="Did you mean 'astronaut'"):
        load_image("astronot")


def test_square_resize_centre_crops_then_resizes() -> None:
    image = torch.zeros(3, 10, 20)
    image[:, :, 5:15] = 1.0  # the centre square is white, the sides black
    assert torch.equal(square_resize(image, 10), torch.ones(3, 10, 10))
    small = square_resize(torch.rand(1, 64, 48), 12)
    assert small.shape == (1, 12, 12) and float(small.min()) >= 0 and float(small.max()) <= 1
    with pytest.raises(ValueError, match=r"size must be a positive number of pixels"):
        load_image("astronaut", 0)


def test_starts_have_the_targets_shape_and_range_and_say_what_they_are() -> None:
    target = load_image("astronaut", 32) * 2 - 1  # in (-1, 1)
    generator = torch.Generator().manual_seed(0)
    noise = make_start("noise", target, (-1.0, 1.0), generator=generator)
    blur = make_start("blur", target, (-1.0, 1.0), generator=generator)
    photo = make_start("photo:coffee", target, (-1.0, 1.0), generator=generator)
    for start in (noise, blur, photo):
        assert start.shape == target.shape and start.min() >= -1 and start.max() <= 1
    assert abs(float(noise.mean())) < 0.1  # uniform over the range
    assert float((blur - target).abs().mean()) < float((noise - target).abs().mean())
    assert torch.allclose(photo, load_image("coffee", 32) * 2 - 1, atol=1e-6)
    assert blur_sigma(32, 64) == 1.0 and blur_sigma(256, 128) == 4.0
    grey = make_start("photo", target.mean(dim=1, keepdim=True), (-1.0, 1.0), generator=generator)
    assert grey.shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match=r"unknown start 'clouds'; starts are"):
        make_start("clouds", target, (-1.0, 1.0), generator=generator)
