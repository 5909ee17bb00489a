"""Bad inputs and faults a new user (or an attacker) tries, and what losslab does with each.

Every row of the table in ``docs/robustness.md`` is one case below: the test runs it and checks
the outcome the table states (the exception and a fragment of its message, the CLI's exit status
and one-line error, a warning, or a computed value). Cases that need a whole training run or a
planted file point at the test that covers them, and that test must exist. A last test checks that
the document's table is exactly the one these cases render, so the document cannot drift:
regenerate it with ``python tests/test_robustness.py``.
"""

from __future__ import annotations

import math
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

import losslab
from losslab.cli import main
from losslab.losses import RangeMixupWarning
from losslab.losses.spec import SpecError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "robustness.md"
BEGIN, END = "<!-- cases:begin -->", "<!-- cases:end -->"


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        area: the table section.
        given: what is tried (markdown).
        outcome: what losslab does (markdown), ending with the checked message fragment.
        kind: ``loss`` (a spec given to ``losslab.loss``), ``call`` (``run`` raises), ``warn``
            (``run`` warns), ``quiet`` (``run`` neither raises nor warns), ``value`` (``run``
            returns True), ``cli`` (``losslab ARGV`` exits 2 with one line), ``test`` (covered
            by the named test in another file).
        expect: the message fragment (``loss``/``call``/``warn``/``cli``) or the test's
            ``path::name`` (``test``).
        run: the spec string, argv list, or a callable taking ``tmp_path``.
        error: the exception type expected for ``call``/``loss``.
    """

    area: str
    given: str
    outcome: str
    kind: str
    expect: str = ""
    run: Any = None
    error: type[BaseException] = ValueError
    tags: tuple[str, ...] = field(default=())


def _pair(*shape: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(*shape, generator=generator, dtype=dtype),
            torch.rand(*shape, generator=generator, dtype=dtype))


def _empty_batch(check_values: bool, shape: tuple[int, ...]) -> Callable[[Path], Any]:
    return lambda _: losslab.loss("mse", check_values=check_values)(*_pair(*shape))


def _fp16_frequency(_: Path) -> bool:
    prediction, target = _pair(2, 3, 16, 16)
    half = losslab.loss("frequency")(prediction.half(), target.half())
    full = losslab.loss("frequency")(prediction, target)
    return half.dtype == torch.float16 and math.isclose(float(half), float(full), rel_tol=2e-3)


def _fp64_perceptual(_: Path) -> bool:
    prediction, target = _pair(1, 3, 32, 32, dtype=torch.float64)
    prediction.requires_grad_(True)
    criterion = losslab.loss("perceptual(weights=random, layers=relu1_2)")
    value = criterion(prediction, target)
    value.backward()
    reference = criterion(prediction.detach().float(), target.float())
    return (value.dtype == torch.float64 and prediction.grad is not None
            and math.isclose(float(value.detach()), float(reference), rel_tol=1e-5))


def _mixup(input_range: tuple[float, float], target_scale: float = 1.0) -> Callable[[Path], Any]:
    def run(_: Path) -> None:
        criterion = losslab.loss("l1", input_range=input_range)
        prediction, target = _pair(2, 3, 8, 8)
        for _ in range(3):  # warned once per loss, not once per call
            criterion(prediction * target_scale, target * target_scale)
    return run


def _overflowing_weight(_: Path) -> None:
    losslab.loss("1e40*mse")(*_pair(2, 3, 8, 8))


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _crop_not_a_multiple(_: Path) -> None:
    from losslab.train import TrainConfig
    from losslab.train.config import DataConfig

    TrainConfig(data=DataConfig(crop_size=45))


def _config_inf_lr(tmp_path: Path) -> list[str]:
    return ["train", "--config", _write(tmp_path, "c.yaml", "loss: l1\noptimizer: {lr: .inf}\n")]


def _config_bad_yaml(tmp_path: Path) -> list[str]:
    return ["train", "--config", _write(tmp_path, "c.yaml", "loss: l1\ndata: {crop_size: [32}\n")]


def _config_typo(tmp_path: Path) -> list[str]:
    return ["train", "--config", _write(tmp_path, "c.yaml", "loss: l1\ndata: {crop_sise: 32}\n")]


def _experiment_typo_in_train_options(tmp_path: Path) -> list[str]:
    text = ("name: x\nquestion: q\ntask: reconstruct\ndata: bundled\nbudget: {steps: 2}\n"
            "entries:\n  - loss: l1\n    train_options: {optimizer: {lr: -1}}\n")
    return ["compare", _write(tmp_path, "e.yaml", text), "--out", str(tmp_path / "cmp")]


def _experiment_bad_yaml(tmp_path: Path) -> list[str]:
    return ["compare", _write(tmp_path, "e.yaml", "name: x\nentries:\n  - loss: l1\n - loss: mse\n"),
            "--out", str(tmp_path / "cmp")]


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """YAML lines defining ``a0`` .. ``a8``, each a list of 9 aliases of the one before (9 ** 9
    values once expanded)."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _experiment_alias_bomb(tmp_path: Path) -> list[str]:
    text = (f"{_alias_bomb()}name: x\nquestion: q\ntask: reconstruct\ndata: bundled\n"
            "budget: {steps: 2}\nentries:\n  - loss: l1\n    notes: *a8\n")
    return ["compare", _write(tmp_path, "e.yaml", text), "--out", str(tmp_path / "cmp")]


def _config_alias_bomb(tmp_path: Path) -> list[str]:
    return ["train", "--config", _write(tmp_path, "c.yaml", f"{_alias_bomb()}loss: l1\n")]


def _loss_with_a_bad_input_range(_: Path) -> None:
    losslab.loss("l1", input_range=5)  # type: ignore[arg-type]


def _weights_add_a_directory(tmp_path: Path) -> list[str]:
    return ["weights", "add", str(tmp_path)]


def _out_is_a_file(tmp_path: Path) -> list[str]:
    return ["train", "--out", _write(tmp_path, "a_file", ""), "--steps", "1"]


def _evaluate_empty_checkpoint(tmp_path: Path) -> list[str]:
    from losslab.train import TrainConfig, save_config

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    save_config(TrainConfig(out=str(run)), run / "config.yaml")
    for name in ("best.ckpt", "last.ckpt"):
        (run / "checkpoints" / name).write_bytes(b"")
    return ["evaluate", str(run)]


_TRAIN = ["--crop-size", "32", "--batch-size", "4", "--accelerator", "cpu", "--set",
          "data.options={val_size: 4}", "--set", "data.val_items=4", "--set", "sample_every=0",
          "--set", "grad_share_every=0", "--set", "progress_bar=false"]


def _diverging_train(tmp_path: Path) -> list[str]:
    return ["train", "--lr", "1e6", "--steps", "20", "--out", str(tmp_path / "run"),
            "--set", "val_every=10", *_TRAIN]


DEEP = "l1(view=" + "[" * 5000 + "]" * 5000 + ")"

CASES: list[Case] = [
    # -- security ------------------------------------------------------------------------
    Case("security", "a checkpoint whose pickle calls `os.system`, on `train` resume and `evaluate`",
         "refused before anything runs; one line naming the file", "test",
         "tests/train/test_checkpoint_security.py::test_cli_refuses_a_crafted_checkpoint_in_one_line"),
    Case("security", "zero-byte, garbage or truncated checkpoint",
         "one line naming the file, never advising `weights_only=False`", "test",
         "tests/train/test_checkpoint_security.py::test_empty_or_garbage_checkpoints_get_a_one_line_error"),
    Case("security", "`evaluate` of a run whose `best.ckpt` is empty",
         "exit 2: `is empty (0 bytes`", "cli", "is empty (0 bytes", _evaluate_empty_checkpoint),
    Case("security", "a VGG16 or SqueezeNet file matching only the 8-hex prefix in its name",
         "refused: every weights file is pinned by its full SHA-256", "test",
         "tests/test_weights.py::test_every_weights_file_is_pinned_by_its_full_sha256"),
    # -- nothing lost --------------------------------------------------------------------
    Case("nothing lost", "SIGKILL at step 170 of 300, then the same command again",
         "`metrics.csv` keeps every row up to the kill; the resumed log equals an uninterrupted "
         "run's, no gap or duplicate", "test",
         "tests/train/test_end_to_end.py::test_killed_run_keeps_its_log_and_resumes_it_without_gaps"),
    Case("nothing lost", "SIGTERM (`docker stop`, a scheduler) or Ctrl-C during training",
         "checkpoint of every step done, exit 143 / 130, one line: `stopped by SIGTERM ... "
         "resume`",
         "test", "tests/train/test_end_to_end.py::test_sigterm_saves_a_checkpoint_and_exits_non_zero_with_a_message"),
    Case("nothing lost", "resume with a lower learning rate (losslab's own advice after divergence)",
         "allowed; the resumed optimizer uses the new rate; other changes are refused with the "
         "list of fields that may change", "test",
         "tests/train/test_run.py::test_resume_with_a_lower_learning_rate_is_allowed_and_applied"),
    Case("nothing lost", "`compare` over a run whose `DONE` is empty, checkpoint missing or short, "
         "or metrics missing", "warning, the run is trained (resumed) and evaluated again", "test",
         "tests/experiments/test_comparison_runner.py::test_a_done_run_is_reused_only_when_its_marker_checkpoint_and_metrics_are_sound"),
    # -- command line --------------------------------------------------------------------
    Case("nothing lost", "a training that stops with an error (a diverged loss) inside a longer "
         "Python process", "subnormal floats are no longer flushed afterwards (the fit's speed-up "
         "stayed on process-wide and changed later float results)", "test",
         "tests/train/test_denormals.py::test_a_fit_that_raises_leaves_subnormals_as_they_were"),
    Case("command line", "`losslab train --lr 1e6` (training diverges)",
         "exit 2, one line naming the step and the fix: `lower the learning rate`", "cli",
         "lower the learning rate", _diverging_train),
    Case("command line", "`--loss \"mse@start(1e400)\"`",
         "exit 2, spec error with a caret: `start takes 1 integer step`", "cli",
         "start takes 1 integer step", ["train", "--loss", "mse@start(1e400)"]),
    Case("command line", "`--loss \"mse@ramp(1,1e400)\"`",
         "exit 2, spec error with a caret: `ramp takes 2 integer step`", "cli",
         "ramp takes 2 integer step", ["train", "--loss", "mse@ramp(1,1e400)"]),
    Case("command line", "`--set seed=1e400`", "exit 2: `cannot be read as int`", "cli",
         "cannot be read as int", ["train", "--set", "seed=1e400"]),
    Case("command line", "`--seed -1`", "exit 2: `seed must be an integer from 0 to 4294967295`",
         "cli", "seed must be an integer from 0 to 4294967295", ["train", "--seed", "-1"]),
    Case("command line", "config YAML with `optimizer: {lr: .inf}`",
         "exit 2: `optimizer.lr must be a finite number > 0`", "cli",
         "optimizer.lr must be a finite number > 0", _config_inf_lr),
    Case("command line", "config file with a YAML syntax error",
         "exit 2: `is not valid YAML (line 2, column`", "cli", "is not valid YAML (line 2, column",
         _config_bad_yaml),
    Case("command line", "experiment file with a YAML syntax error",
         "exit 2: `is not valid YAML (line 4, column`", "cli", "is not valid YAML (line 4, column",
         _experiment_bad_yaml),
    Case("command line", "experiment file that is a YAML alias bomb (9 levels of 9 aliases; "
         "`compare` hung for over 5 minutes)", "exit 2 at once, before anything walks the data: "
         "`expands to more than 100000 YAML values through its aliases`", "cli",
         "expands to more than 100000 YAML values through its aliases", _experiment_alias_bomb),
    Case("command line", "config file that is a YAML alias bomb",
         "exit 2 at once: `expands to more than 100000 YAML values`", "cli",
         "expands to more than 100000 YAML values", _config_alias_bomb),
    Case("command line", "config file with a typo'd key (`data: {crop_sise: 32}`)",
         "exit 2, one line with the file, line and column, and the closest key: `line 2, column "
         "8: unknown config key 'data.crop_sise'. Did you mean 'crop_size'`", "cli",
         "line 2, column 8: unknown config key 'data.crop_sise'. Did you mean 'crop_size'",
         _config_typo),
    Case("command line", "experiment entry with `train_options: {optimizer: {lr: -1}}`",
         "exit 2 when the file is read, before any training: `line 8, column 37: "
         "entries[0].train_options.optimizer.lr must be a finite number > 0`", "cli",
         "line 8, column 37: entries[0].train_options.optimizer.lr must be a finite number > 0",
         _experiment_typo_in_train_options),
    Case("command line", "`compare colors --perceptual-weights vgg.pth` (no such file)",
         "exit 2 before training: `must be one of imagenet, random, auto, or the path of a "
         "VGG19 state dict file`", "cli",
         "must be one of imagenet, random, auto, or the path of a VGG19 state dict file",
         ["compare", "colors", "--perceptual-weights", "vgg.pth"]),
    Case("command line", "`--set \"data.options={a: [}\"` (YAML syntax error)",
         "exit 2: `is not valid YAML`", "cli", "is not valid YAML",
         ["train", "--set", "data.options={a: [}"]),
    Case("command line", "`--out` naming a file", "exit 2: `is a file, not a folder`", "cli",
         "is a file, not a folder", _out_is_a_file),
    Case("command line", "`weights add DIR` of a directory that exists (said \"no such file\")",
         "exit 2, naming the file to pass: `it is a directory; pass the weights file itself`",
         "cli", "it is a directory; pass the weights file itself", _weights_add_a_directory),
    Case("command line", "`--accelerator gpu` on a machine without a GPU",
         "exit 2: Lightning's reason and `Use --accelerator cpu`", "cli", "Use --accelerator cpu",
         ["train", "--accelerator", "gpu", "--steps", "1"]),
    Case("command line", "`--accelerator gpu` with `--debug`",
         "the traceback is shown (also with `LOSSLAB_DEBUG=1`)", "call", "gpu backend",
         lambda _: main(["train", "--accelerator", "gpu", "--steps", "1", "--debug"]),
         error=Exception),
    Case("command line", "`--set stpes=3` (typo)", "exit 2: `Did you mean 'steps'`", "cli",
         "Did you mean 'steps'", ["train", "--set", "stpes=3"]),
    Case("command line", "`probe \"ssim(window_size=99999999)\"`",
         "exit 2 (no allocator error): `window_size must be at most 255`", "cli",
         "window_size must be at most 255", ["probe", "ssim(window_size=99999999)"]),
    Case("command line", "`train --loss \"l1 + adversarial(width=99999999)\"`",
         "exit 2 (no allocator error): `width must be at most 4096`", "cli",
         "width must be at most 4096", ["train", "--loss", "l1 + adversarial(width=99999999)"]),
    Case("command line", "`probe` of a spec value nested 5000 lists deep",
         "exit 2 (no RecursionError): `nested more than 8 lists deep`", "cli",
         "nested more than 8 lists deep", ["probe", DEEP]),
    Case("command line", "any other failure inside a command: allocator, recursion limit, "
         "overflow, permission, an unexpected exception", "exit 2, one line with a fix; "
         "`--debug` or `LOSSLAB_DEBUG=1` shows the traceback", "test",
         "tests/test_cli.py::test_any_failure_is_one_line_with_a_fix_and_debug_shows_the_traceback"),
    Case("command line", "`losslab compare` (each run's Lightning bar, tips and warnings)",
         "one progress display (run k of n, step, loss, time left), one line per finished run; "
         "Lightning's output only with `--verbose`", "test",
         "tests/train/test_console.py::test_compare_prints_one_line_per_run_and_no_lightning_output"),
    Case("command line", "`losslab train` (Lightning's training and validation bars, though "
         "its messages are hidden unless `--verbose`)", "one progress line (step, loss, last "
         "validation loss, time left) and `run finished`; Lightning's bars only with `--verbose`",
         "test", "tests/train/test_console.py::"
         "test_losslab_train_shows_one_progress_line_and_no_lightning_bars"),
    Case("command line", "two losslab trainings at once on a 2-core machine (each ran 7x slower)",
         "each takes its share of the cores; measured under other load: 0.36 s/step each "
         "instead of 3.12 (`benchmarks/concurrency.py`)", "test",
         "tests/train/test_threads.py::test_a_second_process_halves_the_threads_and_leaving_restores_them"),
    # -- values at construction ----------------------------------------------------------
    Case("loss values", "`frequency(focal=1e30)` (was NaN)", "SpecError: `focal must be <= 10`",
         "loss", "focal must be <= 10", "frequency(focal=1e30)"),
    Case("loss values", "`gdl(alpha=1e30)` (was 0)", "SpecError: `gdl alpha must be <= 10`",
         "loss", "gdl alpha must be <= 10", "gdl(alpha=1e30)"),
    Case("loss values", "`charbonnier(eps=1e400)` (was inf)",
         "SpecError: `eps must be a finite number > 0`", "loss", "eps must be a finite number > 0",
         "charbonnier(eps=1e400)"),
    Case("loss values", "`charbonnier(eps='x')` (was a comparison error)",
         "SpecError: `eps must be a number such as 1e-3; got 'x'`", "loss",
         "eps must be a number such as 1e-3; got 'x'", "charbonnier(eps='x')"),
    Case("loss values", "`huber(delta=0)`", "SpecError: `delta must be a finite number > 0`",
         "loss", "delta must be a finite number > 0", "huber(delta=0)"),
    Case("loss values", "`l1(check_values=banana)` (was accepted)",
         "SpecError: `check_values must be true, false or none`", "loss",
         "check_values must be true, false or none", "l1(check_values=banana)"),
    Case("loss values", "`adversarial(conditional=none)` (turned conditioning on)",
         "SpecError: `conditional must be true or false`", "loss",
         "conditional must be true or false", "adversarial(conditional=none)"),
    Case("loss values", "`l1(input_range=5)`", "SpecError: `input_range must be a pair (low, high)`",
         "loss", "input_range must be a pair (low, high)", "l1(input_range=5)"),
    Case("loss values", "`losslab.loss(\"l1\", input_range=5)` (was `'int' object is not "
         "iterable`)", "ValueError, the spec form's message: `input_range must be a pair (low, "
         "high)`", "call", "input_range must be a pair (low, high)", _loss_with_a_bad_input_range),
    Case("loss values", "`ms_ssim(scales=1e400)`", "SpecError: `scales must be an integer from 1 to 5`",
         "loss", "scales must be an integer from 1 to 5", "ms_ssim(scales=1e400)"),
    Case("loss values", "`adversarial(lr_d=1e400)`", "SpecError: `lr_d must be a finite number > 0`",
         "loss", "lr_d must be a finite number > 0", "adversarial(lr_d=1e400)"),
    Case("loss values", "`msee` (unknown name)", "SpecError: `Did you mean 'mse'`", "loss",
         "Did you mean 'mse'", "msee"),
    Case("loss values", "`1e40*mse`: each term finite, the weighted value overflows",
         "FloatingPointError naming the term: `'mse' = ... x weight 1e+40 = inf`", "call",
         "x weight 1e+40 = inf", _overflowing_weight, error=FloatingPointError),
    Case("loss values", "data crop 45 for the default autoencoder (depth 3)",
         "ValueError at config time: `Use crop_size 40 or 48`", "call", "Use crop_size 40 or 48",
         _crop_not_a_multiple),
    # -- tensors -------------------------------------------------------------------------
    Case("tensors", "empty batch `(0, 3, 32, 32)`, value checks on (was an aminmax error)",
         "ValueError: `prediction is empty`", "call", "prediction is empty",
         _empty_batch(True, (0, 3, 32, 32))),
    Case("tensors", "empty image `(2, 3, 0, 32)`, value checks off (was NaN)",
         "ValueError: `prediction is empty`", "call", "prediction is empty",
         _empty_batch(False, (2, 3, 0, 32))),
    Case("tensors", "NaN in the target", "ValueError: `target contains 1 NaN or Inf value(s)`",
         "call", "target contains 1 NaN or Inf value(s)",
         lambda _: losslab.loss("l1")(torch.rand(1, 3, 4, 4),
                                      torch.rand(1, 3, 4, 4).index_put_(
                                          (torch.tensor([0]),) * 4, torch.tensor(float("nan"))))),
    Case("tensors", "a `[0, 255]` image given to a `[0, 1]` loss",
         "ValueError: `It looks like a [0, 255] image: divide by 255`", "call",
         "It looks like a [0, 255] image: divide by 255",
         lambda _: losslab.loss("l1")(torch.rand(1, 3, 4, 4) * 255, torch.rand(1, 3, 4, 4) * 255)),
    Case("tensors", "prediction and target of different shapes",
         "ValueError: `must have the same shape`", "call", "must have the same shape",
         lambda _: losslab.loss("l1")(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))),
    Case("tensors", "`uint8` images", "TypeError: `must be a floating-point tensor`", "call",
         "must be a floating-point tensor",
         lambda _: losslab.loss("l1")(torch.zeros(1, 3, 4, 4, dtype=torch.uint8),
                                      torch.zeros(1, 3, 4, 4, dtype=torch.uint8)),
         error=TypeError),
    Case("tensors", "float16 into `frequency` (CPU FFT has no half kernels)",
         "computed in float32, returned as float16 (equal to the float32 value)", "value",
         run=_fp16_frequency),
    Case("tensors", "float64 into `perceptual` (a float32 network)",
         "computed (cast to the network's dtype, gradients flow), returned as float64", "value",
         run=_fp64_perceptual),
    Case("tensors", "float64 into `lpips` (a float32 network)",
         "computed (cast to the network's dtype, gradients flow), returned as float64", "test",
         "tests/losses/test_lpips.py::test_float64_inputs_are_computed_in_the_networks_dtype"),
    Case("tensors", "`[0, 1]` data under a declared `input_range=(-1, 1)`",
         "RangeMixupWarning, once per loss: `the loss is half its intended value`", "warn",
         "the loss is half its intended value", _mixup((-1.0, 1.0))),
    Case("tensors", "`[0, 1]` data under a declared `input_range=(0, 255)`",
         "RangeMixupWarning, once per loss: `1/255 of its intended value`", "warn",
         "1/255 of its intended value", _mixup((0.0, 255.0))),
    Case("tensors", "a dark `[-1, 1]` scene that never goes above 0",
         "accepted without a warning (data may use part of its range)", "quiet",
         run=_mixup((-1.0, 1.0), target_scale=-1.0)),
    # -- data ----------------------------------------------------------------------------
    Case("data", "16-bit PNG: grey, grey + alpha, RGB, RGBA (was 8-bit, 99.6 % of a grey photo "
         "at 255)", "read at full depth (value / 65535); 8-bit and palette files as before",
         "test", "tests/data/test_folder.py::test_png_of_every_colour_type_is_read_at_full_depth"),
    Case("data", "a bright 16-bit grey photo in a folder data set",
         "crops keep its tones (< 1 % at white)", "test",
         "tests/data/test_folder.py::test_bright_16_bit_grey_photo_is_not_clipped_to_white"),
    Case("data", "a crop too large for a photo", "the suggested crop size works (a multiple of 8 "
         "that fits)", "test", "tests/data/test_bundled.py::test_errors_name_the_photo_and_the_fix"),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(cases: list[Case] = CASES) -> str:
    """The markdown table of ``docs/robustness.md`` (between the case markers)."""
    lines = ["| # | area | bad input or fault | what losslab does |", "|---|---|---|---|"]
    for number, case in enumerate(cases, start=1):
        lines.append(f"| {number} | {case.area} | {_cell(case.given)} | {_cell(case.outcome)} |")
    return "\n".join(lines)


def _check_cli(argv: list[str], expect: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(argv)
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert status == 2, err
    assert "Traceback" not in err
    spec_error = "in loss spec:" in lines[0] if lines else False
    assert len(lines) == (3 if spec_error else 1), err  # a spec error adds the spec and a caret
    assert lines[0].startswith(f"losslab {argv[0]}: error: ") and expect in err, err


@pytest.mark.parametrize("case", CASES, ids=[f"{i + 1}-{c.area}" for i, c in enumerate(CASES)])
def test_case(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # CLI defaults (runs/...) land in the temporary folder
    if case.kind == "loss":
        with pytest.raises(SpecError, match=re.escape(case.expect)):
            losslab.loss(case.run)
    elif case.kind == "call":
        with pytest.raises(case.error, match=re.escape(case.expect)):
            case.run(tmp_path)
    elif case.kind == "warn":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            case.run(tmp_path)
        relevant = [w for w in caught if issubclass(w.category, RangeMixupWarning)]
        assert len(relevant) == 1 and case.expect in str(relevant[0].message)
    elif case.kind == "quiet":
        with warnings.catch_warnings():
            warnings.simplefilter("error", RangeMixupWarning)
            case.run(tmp_path)
    elif case.kind == "value":
        assert case.run(tmp_path) is True
    elif case.kind == "cli":
        argv = case.run(tmp_path) if callable(case.run) else list(case.run)
        _check_cli(argv, case.expect, capsys)
    elif case.kind == "test":
        path, name = case.expect.split("::")
        assert f"def {name}(" in (ROOT / path).read_text(), f"{case.expect} does not exist"
    else:
        raise AssertionError(f"unknown case kind {case.kind!r}")


def test_the_document_lists_exactly_these_cases() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert table == render_table(), "docs/robustness.md is stale: run python tests/test_robustness.py"


def write_document_table() -> None:
    """Rewrite the table between the markers of ``docs/robustness.md``."""
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{BEGIN}\n{render_table()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    write_document_table()
    print(f"wrote {len(CASES)} cases to {DOC}", file=sys.stderr)
