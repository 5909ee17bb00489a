"""The report opened in headless Chromium: every image loads, no console error, not blank."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageStat
from report_chromium import check_page, find_chromium

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium is not installed (apt-get install -y chromium; the CI script installs it)",
)


def test_report_renders_in_chromium(built_report: Path, tmp_path: Path) -> None:
    result = check_page(built_report, tmp_path / "report.png")
    assert result.total_images == 7
    assert result.broken_images == []
    assert result.console_errors == []
    assert result.metrics_tables == 1
    screenshot = Image.open(tmp_path / "report.png").convert("RGB")
    assert screenshot.width == 1280 and screenshot.height > 2000  # the whole page
    top = screenshot.crop((0, 0, 1280, 900))
    assert max(ImageStat.Stat(top).stddev) > 20, "the first screen of the report is blank"


def test_chromium_check_detects_a_missing_image(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<html><body><h1>x</h1><img src="nope.png"></body></html>')
    result = check_page(page, tmp_path / "broken.png")
    assert result.broken_images == ["nope.png"]
