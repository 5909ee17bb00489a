"""probe.output: the text table, the JSON and CSV files and the heatmap of a probe result, on a
hand-built result (so every number in the outputs is known)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from losslab.probe import (
    ProbeResult,
    format_probe_table,
    plot_probe_heatmap,
    write_probe_csv,
    write_probe_json,
)
from losslab.probe.output import probe_caption


@pytest.fixture()
def result() -> ProbeResult:
    def cell(raw: float, normalised: float) -> dict[str, float]:
        return {"raw": raw, "normalised": normalised}

    values = {
        "mse": {"hue": cell(0.01, 1.0), "channel_red": cell(0.01, 1.0),
                "shift": cell(0.02, 2.0), "mean_of_two": cell(0.005, 0.5)},
        "l1(luma)": {"hue": cell(0.0, 0.0), "channel_red": cell(0.04, 2.0),
                     "shift": cell(0.001, 0.05), "mean_of_two": cell(0.03, 1.5)},
    }
    return ProbeResult(values=values, rmse=0.1, seed=0, image_shape=(4, 3, 32, 48))


def test_table_rows_columns_values_and_preference(result: ProbeResult) -> None:
    lines = format_probe_table(result).splitlines()
    assert lines[0].startswith("Loss probe: normalised values; matched perturbations at pixel "
                               "RMSE 0.1 (4 images 32x48)")
    header = lines[2].split()
    assert header == ["loss", "hue", "ch_red", "shift", "mean2", "prefers"]
    assert lines[4].split() == ["mse", "1.00", "1.00", "2.00", "0.50", "mean_of_two"]
    assert lines[5].split() == ["l1(luma)", "0.00", "2.00", "0.05", "1.50", "shift"]
    raw = format_probe_table(result, normalised=False, precision=1).splitlines()
    assert raw[0].startswith("Loss probe: raw values") and raw[4].split()[1:3] == ["0.01", "0.01"]


def test_json_and_csv_hold_every_cell_exactly(result: ProbeResult, tmp_path: Path) -> None:
    written = write_probe_json(result, tmp_path / "deep" / "probe.json")  # folders are made
    assert json.loads(written.read_text()) == result.to_dict()
    rows = list(csv.DictReader(write_probe_csv(result, tmp_path / "probe.csv").open()))
    assert len(rows) == 8 and list(rows[0]) == ["spec", "perturbation", "raw", "normalised"]
    for row in rows:
        assert float(row["raw"]) == result.raw(row["spec"], row["perturbation"])
        assert float(row["normalised"]) == result.normalised(row["spec"], row["perturbation"])


def test_heatmap_file_follows_the_suffix_and_the_caption_says_what_to_look_for(
    result: ProbeResult, tmp_path: Path
) -> None:
    assert plot_probe_heatmap(result, tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_probe_heatmap(result, tmp_path / "p.svg", title="t").read_text().startswith("<?xml")
    caption = probe_caption(result)
    assert "RMSE 0.1" in caption and "zeros" in caption and "prefers blur" in caption
