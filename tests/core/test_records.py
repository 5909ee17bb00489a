"""The on-disk records shared by the runner (writes) and the report (reads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from losslab.core.records import (
    RECORD_VERSION,
    TASK_INPUT_CAPTIONS,
    ComparisonRecord,
    DoneMarker,
    RecordError,
    RunEntry,
    parse_record,
    read_record,
)


def _comparison() -> ComparisonRecord:
    return ComparisonRecord(
        version=RECORD_VERSION, experiment="tiny", perceptual_weights="random", seeds=[0, 1],
        runs=[RunEntry(label="l1", run_dir="l1", loss="l1", baseline=False, hypotheses=1,
                       note="", steps=4, weights=[], probe_spec="l1", probe_note="",
                       seeds={"0": {"run_dir": "l1", "psnr": 20.0}},
                       spread={"psnr": {"mean": 20.0, "sd": 0.0, "min": 20.0, "max": 20.0,
                                        "n": 1}},
                       headline_metric="psnr", median_seed=0, entry_dir="l1")],
        trained_this_call=["l1"], failed={}, timings={"total": 1.25})


def test_a_written_record_reads_back_equal(tmp_path: Path) -> None:
    record = _comparison()
    path = tmp_path / "comparison.json"
    path.write_text(json.dumps(record.dump()))
    again = read_record(ComparisonRecord, path)
    assert again == record and again.dump() == record.dump()
    assert json.loads(path.read_text())["version"] == RECORD_VERSION


def test_only_the_fields_set_are_written_in_field_order() -> None:
    entry = RunEntry(label="bicubic (baseline)", run_dir="baseline-bicubic", baseline=True)
    assert list(entry.dump()) == ["label", "run_dir", "baseline"]  # no invented keys


def test_older_and_newer_files_read_within_the_version(tmp_path: Path) -> None:
    old = {"experiment": "x", "runs": [{"label": "a", "run_dir": "a"}]}  # no version: 1
    read = parse_record(ComparisonRecord, old, "c.json")
    assert read.version == 1 and read.runs[0].hypotheses is None and read.runs[0].steps is None
    unknown = {**old, "written_by": "a later losslab", "runs": [{"run_dir": "a", "colour": 1}]}
    assert parse_record(ComparisonRecord, unknown, "c.json").runs[0].run_dir == "a"
    with pytest.raises(RecordError, match=r"^c\.json was written by a newer losslab \(record "
                                          r"version 99.*upgrade losslab"):
        parse_record(ComparisonRecord, {**old, "version": 99}, "c.json")


def test_malformed_records_are_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match=r"^c\.json: runs\.0\.steps: .*'many'.*re-run") as info:
        parse_record(ComparisonRecord, {"runs": [{"run_dir": "a", "steps": "many"}]}, "c.json")
    assert "\n" not in str(info.value)
    with pytest.raises(RecordError, match=r"runs\.0\.run_dir: Field required"):
        parse_record(ComparisonRecord, {"runs": [{"label": "a"}]}, "c.json")
    with pytest.raises(RecordError, match=r"not a losslab ComparisonRecord .*got list"):
        parse_record(ComparisonRecord, [], "c.json")
    broken = tmp_path / "DONE"
    broken.write_text("{not json")
    with pytest.raises(RecordError, match=r"is not valid JSON"):
        read_record(DoneMarker, broken)
    assert read_record(DoneMarker, tmp_path / "missing") is None


def test_every_task_has_one_caption_and_there_are_no_others() -> None:
    from losslab.train.tasks import TASKS_TABLE

    assert set(TASK_INPUT_CAPTIONS) == set(TASKS_TABLE.names())
