"""Figures, JSON and the two jobs behind ``losslab equal`` / ``losslab mad``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from losslab.synthesis import (
    format_mad,
    format_metamers,
    load_image,
    mad,
    metamers,
    plot_mad,
    plot_metamers,
    write_mad,
    write_metamers,
)


def test_metamer_figure_and_json(tmp_path: Path) -> None:
    written = write_metamers(["mse", "l1(red)"], "chelsea", tmp_path, size=24, steps=20)
    assert written.figure == tmp_path / "equal.png"
    with Image.open(written.figure) as figure:
        assert figure.size[0] > figure.size[1] > 200  # 2 rows, 7 columns
    payload = json.loads(written.json.read_text())
    assert payload["labels"] == ["mse", "l1(red)"]
    first = payload["results"][0]
    # a bare "photo" start never repeats the target: chelsea's photo start is coffee
    assert list(first["starts"]) == ["noise", "blur", "photo:coffee"]
    assert set(first["starts"]["noise"]) >= {"loss_ratio", "rmse", "err_luma", "err_chroma",
                                             "err_red", "err_green", "err_blue", "start_rmse"}
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temporary file left
    text = format_metamers(written.results)
    assert "l1(red)" in text and "photo:coffee" in text


def test_mad_figure_and_json(tmp_path: Path) -> None:
    written = write_mad("mse", "ssim", "astronaut", tmp_path, size=24, steps=10)
    payload = json.loads(written.json.read_text())
    assert set(payload["images"]) == {"best_b", "worst_b", "best_a", "worst_a"}
    assert payload["images"]["best_b"]["label"] == "mse held, best for ssim"
    assert payload["start"]["ratio_a"] == 1.0
    assert written.figure.is_file()
    assert "mse held, worst for ssim" in format_mad(written.results)


def test_figures_for_grey_and_signed_images(tmp_path: Path) -> None:
    grey = load_image("astronaut", 24).mean(dim=1, keepdim=True) * 2 - 1
    result = metamers("l1", grey, steps=5, input_range=(-1, 1))
    assert plot_metamers([result], tmp_path / "grey.png", labels=["L1 on grey"]).is_file()
    competition = mad("mse", "l1", grey, steps=3, input_range=(-1, 1))
    assert plot_mad(competition, tmp_path / "mad.svg").read_text().startswith("<?xml")
    with pytest.raises(ValueError, match="got 2 labels for 1 results"):
        plot_metamers([result], tmp_path / "x.png", labels=["a", "b"])


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
