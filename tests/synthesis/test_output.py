"""synthesis.output: the metamer and MAD figures (grey and signed images, labels)."""

from __future__ import annotations

from pathlib import Path

import pytest

from losslab.synthesis import (
    load_image,
    mad,
    metamers,
    plot_mad,
    plot_metamers,
)


def test_figures_for_grey_and_signed_images(tmp_path: Path) -> None:
    grey = load_image("astronaut", 24).mean(dim=1, keepdim=True) * 2 - 1
    result = metamers("l1", grey, steps=5, input_range=(-1, 1))
    assert plot_metamers([result], tmp_path / "grey.png", labels=["L1 on grey"]).is_file()
    competition = mad("mse", "l1", grey, steps=3, input_range=(-1, 1))
    assert plot_mad(competition, tmp_path / "mad.svg").read_text().startswith("<?xml")
    with pytest.raises(ValueError, match="got 2 labels for 1 results"):
        plot_metamers([result], tmp_path / "x.png", labels=["a", "b"])
