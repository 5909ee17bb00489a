"""synthesis.commands: the two jobs behind ``losslab equal`` and ``losslab mad`` (figure, JSON,
printed table), and the photo start that never repeats the target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from losslab.synthesis import format_mad, format_metamers, write_mad, write_metamers
from losslab.synthesis.commands import ALTERNATIVE_START_PHOTO, _starts_for


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


def test_a_photo_start_is_never_the_target_itself() -> None:
    # the default start photo is chelsea: a chelsea target (by name or file) starts from coffee
    assert _starts_for("chelsea", ["noise", "photo"]) == ["noise", f"photo:{ALTERNATIVE_START_PHOTO}"]
    assert _starts_for("/photos/chelsea.png", ["photo"]) == [f"photo:{ALTERNATIVE_START_PHOTO}"]
    assert _starts_for("astronaut", ["photo", "blur", "photo:rocket"]) == ["photo", "blur",
                                                                           "photo:rocket"]


def test_bad_starts_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown start 'sky'"):
        write_metamers(["mse"], "chelsea", tmp_path, size=16, steps=2, starts=["sky"])
    assert not list(tmp_path.iterdir())
