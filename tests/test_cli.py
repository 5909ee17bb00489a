"""The command line, called in process: each command runs its library function and exits 0,
bad input exits 2 with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from losslab.cli import main


def test_weights_lists_every_network(capsys: pytest.CaptureFixture[str]) -> None:
    from losslab.weights import list_weights

    assert main(["weights"]) == 0
    printed = capsys.readouterr().out
    for info in list_weights():
        assert info.file_name in printed
    assert main(["weights", "--verify"]) == 0


def test_weights_add_rejects_an_unknown_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stray = tmp_path / "something.pth"
    stray.write_bytes(b"not weights")
    assert main(["weights", "add", str(stray)]) == 2
    assert "losslab weights: error:" in capsys.readouterr().err


def test_probe_writes_the_documented_json(tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    assert main(["probe", "mse", "l1(red)", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"mse", "l1(red)"}
    assert result["l1(red)"]["channel_green"]["raw"] == pytest.approx(0.0, abs=1e-7)
    assert set(result["mse"]["blur"]) == {"raw", "normalised"}


def test_unknown_loss_in_probe_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "l1x"]) == 2
    assert "Did you mean 'l1'" in capsys.readouterr().err


def test_probe_perturbations_flag_picks_a_subset(tmp_path: Path) -> None:
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    generator = torch.Generator().manual_seed(0)
    for i in range(2):
        array = (torch.rand(24, 24, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(array).save(photos / f"{i}.png")
    out = tmp_path / "probe.json"
    argv = ["probe", "mse", "--images", str(photos), "--perturbations", "noise,blur,shift",
            "--json", str(out)]
    assert main(argv) == 0
    assert set(json.loads(out.read_text())["mse"]) == {"noise", "blur", "shift"}


def test_probe_unknown_perturbation_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "mse", "--perturbations", "noise,blurr"]) == 2
    err = capsys.readouterr().err
    assert "unknown perturbation 'blurr'" in err and "Did you mean 'blur'" in err


def test_train_on_a_folder_then_evaluate(tmp_path: Path) -> None:
    import numpy as np
    import yaml
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        pixels = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(photos / f"image_{index}.png")
    out = tmp_path / "run"
    arguments = ["train", "--task", "reconstruct", "--data", str(photos), "--loss", "l1(luma)",
                 "--steps", "3", "--crop-size", "32", "--batch-size", "4", "--out", str(out),
                 "--set", "sample_every=0"]
    assert main(arguments) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["data"]["name"] == "folder" and config["data"]["options"]["path"] == str(photos)
    assert config["loss"] == "l1(luma)" and config["steps"] == 3
    assert main(["evaluate", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < metrics["psnr"] < 100 and metrics["lpips"] is None


def test_train_rejects_an_unknown_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--set", "stpes=3"]) == 2
    assert "Did you mean 'steps'" in capsys.readouterr().err


def test_compare_without_an_experiment_says_what_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare"]) == 2
    err = capsys.readouterr().err
    assert "losslab compare: error: give an experiment" in err and "colors" in err


def test_train_on_a_missing_folder_names_the_folder(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "my_photos"
    assert main(["train", "--data", str(missing), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"folder {str(missing)!r} does not exist" in err and "Did you mean" not in err
    assert not (tmp_path / "run").exists()


def test_only_rank_zero_reports_the_finished_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import losslab.train
    from losslab.train import RunResult

    def fake_train(config, **_):  # a DDP worker process returns the same result as rank 0
        return RunResult(run_dir=Path(config.out), metrics={}, best_checkpoint=None,
                         last_checkpoint=Path(config.out) / "last.ckpt", global_step=1,
                         resumed_from_step=None, processes=2)

    monkeypatch.setattr(losslab.train, "train", fake_train)
    argv = ["train", "--out", str(tmp_path / "run")]
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert main(argv) == 0
    assert "run finished" not in capsys.readouterr().out
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert main(argv) == 0
    assert "run finished" in capsys.readouterr().out


def test_equal_writes_figure_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "equal"
    argv = ["equal", "mse", "l1(luma)", "--image", "coffee", "--size", "24", "--steps", "30",
            "--starts", "noise,photo", "--out", str(out)]
    assert main(argv) == 0
    payload = json.loads((out / "equal.json").read_text())
    assert [r["spec"] for r in payload["results"]] == ["mse", "l1(luma)"]
    assert list(payload["results"][1]["starts"]) == ["noise", "photo"]
    assert (out / "equal.png").is_file()
    assert "figure:" in capsys.readouterr().out
    assert payload["results"][0]["continuation"] is None and payload["results"][0]["lr"] == 0.05


def test_equal_passes_step_size_and_continuation(tmp_path: Path) -> None:
    argv = ["equal", "gdl", "--size", "24", "--steps", "10", "--starts", "noise", "--lr", "0.02",
            "--continuation", "4", "--out", str(tmp_path)]
    assert main(argv) == 0
    result = json.loads((tmp_path / "equal.json").read_text())["results"][0]
    assert (result["lr"], result["continuation"]) == (0.02, 4.0)


def test_equal_continuation_words_and_cycles(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """By default gdl gets the coarsest continuation and three cycles (said in the table), mse
    plain descent; ``off``, ``max`` and ``--cycles`` override that."""
    base = ["--size", "25", "--steps", "6", "--starts", "noise"]
    assert main(["equal", "gdl", "mse", *base, "--out", str(tmp_path / "auto")]) == 0
    assert "gdl: 3 x 6 steps, blur 8->0 px" in capsys.readouterr().out
    gdl, mse = json.loads((tmp_path / "auto" / "equal.json").read_text())["results"]
    assert (gdl["continuation"], gdl["cycles"]) == (8.0, 3)
    assert (mse["continuation"], mse["cycles"]) == (None, 1)
    assert len(gdl["starts"]["noise"]["cycle_loss_ratios"]) == 3
    assert main(["equal", "gdl", *base, "--continuation", "off", "--out", str(tmp_path / "off")]) == 0
    off = json.loads((tmp_path / "off" / "equal.json").read_text())["results"][0]
    assert (off["continuation"], off["cycles"]) == (None, 1)
    assert main(["equal", "mse", *base, "--continuation", "max", "--cycles", "2",
                 "--out", str(tmp_path / "max")]) == 0
    forced = json.loads((tmp_path / "max" / "equal.json").read_text())["results"][0]
    assert (forced["continuation"], forced["cycles"]) == (8.0, 2)


def test_mad_writes_figure_and_json(tmp_path: Path) -> None:
    assert main(["mad", "mse", "ssim", "--size", "24", "--steps", "5", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "mad.json").read_text())["spec_b"] == "ssim"
    assert (tmp_path / "mad.png").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["equal", "mse + 0.01*adversarial"], "has the term 'adversarial'"),
        (["equal", "ms_ssim", "--size", "64"], "needs images of at least 161x161"),
        (["equal", "l1(luma)", "--image", "GREY"], "needs a 3-channel RGB image"),
        (["equal", "mse", "--image", "astronot"], "Did you mean 'astronaut'"),
        (["equal", "mse", "--starts", "noise,fog"], "unknown start 'fog'"),
        (["equal", "mse", "--continuation", "-3"], "continuation is a starting blur sigma"),
        (["equal", "mse", "--continuation", "coarse"], "'auto', 'max', 'off'"),
        (["equal", "mse", "--cycles", "0"], "cycles must be a positive integer"),
        (["equal", "mse", "--lr", "0"], "lr is a step in [0, 1] pixel units"),
        (["mad", "mse", "l1 + adversarial"], "has the term 'adversarial'"),
        (["mad", "mse", "ssim", "--noise", "0"], "noise must be a number in (0, 1]"),
    ],
)
def test_synthesis_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    grey = tmp_path / "grey.png"
    Image.new("L", (32, 32), 128).save(grey)
    argv = [str(grey) if item == "GREY" else item for item in argv]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"losslab {argv[0]}: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written for a bad request


def test_probe_without_specs_uses_the_default_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import losslab.probe

    monkeypatch.setattr(losslab.probe, "DEFAULT_PROBE_SPECS", ("mse", "swd"))
    out = tmp_path / "probe.json"
    assert main(["probe", "--perturbations", "noise,shift,mean_of_two", "--json", str(out)]) == 0
    assert list(json.loads(out.read_text())) == ["mse", "swd"]


@pytest.mark.parametrize(("error", "fragment"), [
    (MemoryError(), "out of memory"),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 10 TB"),
     "Lower data.batch_size"),
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    (OverflowError("cannot convert float infinity to integer"), "use a finite value"),
    (PermissionError(13, "Permission denied", "/read-only/run"), "Choose a writable location"),
    (KeyError("x"), "Rerun with --debug"),
])
def test_any_failure_is_one_line_with_a_fix_and_debug_shows_the_traceback(
    error: BaseException, fragment: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import losslab.cli as cli

    def fail(args: object) -> int:
        raise error

    monkeypatch.setattr(cli, "_cmd_losses", fail)
    monkeypatch.delenv("LOSSLAB_DEBUG", raising=False)
    assert main(["losses"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and fragment in err and "Traceback" not in err
    with pytest.raises(type(error)):
        main(["losses", "--debug"])
    with pytest.raises(type(error)):
        main(["--debug", "losses"])
    monkeypatch.setenv("LOSSLAB_DEBUG", "1")
    with pytest.raises(type(error)):
        main(["losses"])


def test_schema_prints_or_writes_the_json_schema(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "train"]) == 0
    train = json.loads(capsys.readouterr().out)
    assert train["title"] == "losslab training config" and "steps" in train["properties"]
    out = tmp_path / "schemas" / "experiment.schema.json"
    assert main(["schema", "experiment", "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"schema: {out}"
    written = json.loads(out.read_text())
    assert written["title"] == "losslab experiment" and "entries" in written["required"]
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left


def test_a_config_file_typo_is_one_line_with_its_place(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("loss: l1\ndata: {crop_sise: 32}\n")
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "pydantic" not in err
    assert (f"losslab train: error: config file {str(config)!r}, line 2, column 8: unknown config "
            "key 'data.crop_sise'. Did you mean 'crop_size'") in err


def test_compare_passes_seeds_jobs_launcher_and_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    import losslab.experiments
    import losslab.report
    from losslab.experiments.runner import RunsFailedError

    calls: list[dict] = []

    def fake_compare(experiment, out, **options):
        calls.append({"experiment": experiment, "out": out, **options})
        if options["jobs"] == 3:  # one run failed, the others finished
            raise RunsFailedError(Path(out), {"l1/seed-1": "ValueError: broken data"})
        return Path(out)

    monkeypatch.setattr(losslab.experiments, "run_comparison", fake_compare)
    monkeypatch.setattr(losslab.report, "build_report", lambda d: Path(d) / "report" / "index.html")
    monkeypatch.delenv("LOSSLAB_THREADS", raising=False)
    assert main(["compare", "colors", "--out", str(tmp_path), "--seeds", "0,1,2", "--jobs", "2",
                 "--threads", "1", "--launcher", "slurm", "--partition", "gpu", "--time", "30",
                 "--gpus-per-job", "1", "--mem", "16"]) == 0
    assert os.environ["LOSSLAB_THREADS"] == "1"  # inherited by every worker and job
    call = calls[-1]
    assert call["seeds"] == [0, 1, 2] and call["jobs"] == 2
    assert {k: call["launcher"][k] for k in ("name", "partition", "time", "gpus_per_job",
                                             "mem_gb")} == \
        {"name": "slurm", "partition": "gpu", "time": 30, "gpus_per_job": 1, "mem_gb": 16}
    capsys.readouterr()

    # a failed run: the report is still built, the failure listed, the exit status 1
    assert main(["compare", "colors", "--out", str(tmp_path), "--jobs", "3"]) == 1
    captured = capsys.readouterr()
    assert "report:" in captured.out
    assert "l1/seed-1: ValueError: broken data" in captured.err

    assert main(["compare", "colors", "--seeds", "0,x"]) == 2
    assert "seeds must be comma-separated integers" in capsys.readouterr().err
    assert main(["compare", "colors", "--threads", "0"]) == 2
    assert "--threads must be a positive integer" in capsys.readouterr().err


def test_cli_lists_every_loss(capsys: pytest.CaptureFixture[str]) -> None:
    from losslab.losses import available_losses

    assert main(["losses"]) == 0
    printed = capsys.readouterr().out
    for name in available_losses():
        assert name in printed
