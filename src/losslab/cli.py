"""The ``losslab`` command line: argument parsing only; every command calls one library function.

Commands::

    losslab losses                      list every loss name, its parameters and description
    losslab weights [add FILE]          pretrained networks: cache status, paths, SHA-256; install
    losslab train ...                   train one model under one loss spec
    losslab evaluate RUN_DIR            metrics of a trained run as JSON and CSV
    losslab probe [SPEC ...]            what each loss charges for controlled changes
    losslab demo mean                   regression to the mean, median and modes
    losslab equal SPEC [SPEC ...] --out D  images each loss considers equal to a photo (metamers)
    losslab mad SPEC_A SPEC_B --out D   MAD competition: what one loss misses, the other sees
    losslab compare EXPERIMENT --out D  one model per loss, one HTML report
    losslab report DIR                  rebuild a comparison's report from disk
    losslab schema train|experiment     JSON Schema of config / experiment files (for editors)

Each command imports its own package inside its handler (the one place losslab imports in
functions by habit): ``losslab --help``, ``losslab losses`` and argument errors then answer
without loading Lightning, which importing ``losslab.train`` costs (about 3x the import time of
``losslab.cli`` alone).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def _cmd_losses(args: argparse.Namespace) -> int:
    from losslab.losses import format_loss_table
    from losslab.losses.views import available_views

    print(format_loss_table())
    print(f"\ncolour views (first argument of pixel/structural losses): {', '.join(available_views())}")
    print("spec example: \"mse + 0.01*perceptual(layers=relu1_2,relu2_2, weights=random)@ramp(1000,2000)\"")
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    from losslab.weights import add_weights, format_weights_table

    if args.action == "add":
        if not args.file:
            raise ValueError("usage: losslab weights add FILE (the weights file you carried over).")
        destination = add_weights(Path(args.file))
        print(f"verified and installed: {destination}")
        return 0
    print(format_weights_table(verify=args.verify))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from losslab.train import StepProgress, config_from_overrides, quiet_lightning, train

    overrides = {
        key: value
        for key, value in {
            "task": args.task,
            "data": args.data,
            "loss": args.loss,
            "steps": args.steps,
            "out": args.out,
            "seed": args.seed,
            "devices": args.devices,
            "num_nodes": args.num_nodes,
            "precision": args.precision,
            "accelerator": args.accelerator,
            "hypotheses": args.hypotheses,
            "batch_size": args.batch_size,
            "crop_size": args.crop_size,
            "lr": args.lr,
        }.items()
        if value is not None
    }
    if args.data and Path(args.data).is_dir():  # `--data my_photos/`: a folder of images
        overrides["data"] = "folder"
        overrides["data.options"] = {"path": str(Path(args.data))}
    elif args.data and any(mark in args.data for mark in ("/", "\\", ".", "~")):
        from losslab.data import available_datasets

        names = ", ".join(name for name in available_datasets() if name != "folder")
        raise ValueError(  # a path, not a data set name: say so instead of suggesting a name
            f"--data: folder {args.data!r} does not exist (or is not a directory). Give a folder "
            f"of images, or a data set name: {names}."
        )
    for assignment in args.set or []:
        key, separator, value = assignment.partition("=")
        if not separator:
            raise ValueError(f"--set takes KEY=VALUE (e.g. --set task_options.scale=4); got {assignment!r}.")
        overrides[key.strip()] = value.strip()
    config = config_from_overrides(args.config, overrides)
    callbacks: list[StepProgress] = []
    if config.progress_bar and not args.verbose:  # one display of losslab's, not Lightning's bars
        config.progress_bar = False  # a field that may change on resume
        callbacks.append(StepProgress(Path(config.out).name))
    with quiet_lightning(not args.verbose):
        result = train(config, callbacks=callbacks)
    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
        print(f"run finished: {result.run_dir}")  # once, not once per DDP process
    return 0


def _sample_count(text: str) -> int:
    """``--samples``: a whole number >= 1 (argparse turns the error into one usage line)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 (samples per validation "
                                         f"input, e.g. --samples 8); got {text!r}")
    return value


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from losslab.experiments import evaluate_run

    metrics = evaluate_run(Path(args.run_dir), samples=args.samples)
    print(json.dumps(metrics, indent=2, default=str))
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    from losslab.probe import (
        DEFAULT_PROBE_SPECS,
        format_probe_table,
        plot_probe_heatmap,
        run_probe,
        write_probe_csv,
        write_probe_json,
    )

    perturbations = (
        [name.strip() for name in args.perturbations.split(",") if name.strip()]
        if args.perturbations else None
    )
    result = run_probe(args.specs or list(DEFAULT_PROBE_SPECS), image_dir=args.images, rmse=args.rmse, seed=args.seed,
                       perturbations=perturbations)
    print(format_probe_table(result))
    if args.json:
        write_probe_json(result, Path(args.json))
    if args.csv:
        write_probe_csv(result, Path(args.csv))
    if args.heatmap:
        plot_probe_heatmap(result, Path(args.heatmap))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from losslab.demo import format_mean_demo, run_mean_demo, write_mean_demo_json

    result = run_mean_demo(out_dir=Path(args.out) if args.out else None, seed=args.seed)
    print(format_mean_demo(result))
    if args.json:
        print(f"numbers: {write_mean_demo_json(result, Path(args.json))}")
    return 0


def _continuation_arg(text: str) -> float | str:
    """``--continuation``: a sigma in pixels or a word (checked again by ``metamers``)."""
    try:
        return float(text)
    except ValueError:
        return text


def _cmd_equal(args: argparse.Namespace) -> int:
    from losslab.synthesis import format_metamers, write_metamers

    starts = [name.strip() for name in args.starts.split(",") if name.strip()]
    written = write_metamers(args.specs, args.image, Path(args.out), size=args.size,
                             starts=starts, steps=args.steps, seed=args.seed, device=args.device,
                             lr=args.lr, continuation=args.continuation, cycles=args.cycles)
    print(format_metamers(written.results))
    print(f"figure: {written.figure}\nnumbers: {written.json}")
    return 0


def _cmd_mad(args: argparse.Namespace) -> int:
    from losslab.synthesis import format_mad, write_mad

    written = write_mad(args.spec_a, args.spec_b, args.image, Path(args.out), size=args.size,
                        noise=args.noise, steps=args.steps, seed=args.seed, device=args.device)
    print(format_mad(written.results))
    print(f"figure: {written.figure}\nnumbers: {written.json}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from losslab.experiments import list_experiments, run_comparison
    from losslab.report import build_report

    if args.list:
        for name in list_experiments():
            print(name)
        return 0
    if not args.experiment:
        raise ValueError(
            "give an experiment: a shipped name (" + ", ".join(list_experiments())
            + ") or the path of a YAML file, e.g. losslab compare colors --out runs/colors."
        )
    from losslab.experiments.runner import RunsFailedError
    from losslab.experiments.seeds import parse_seeds

    launcher = {"name": args.launcher, "devices_per_job": args.devices_per_job,
                "partition": args.partition, "time": args.time,
                "gpus_per_job": args.gpus_per_job, "cpus_per_job": args.cpus_per_job,
                "mem_gb": args.mem}
    failed: RunsFailedError | None = None
    try:
        directory = run_comparison(
            args.experiment,
            Path(args.out) if args.out else None,
            steps=args.steps,
            budget_scale=args.budget_scale,
            perceptual_weights=args.perceptual_weights,
            seeds=parse_seeds(args.seeds) if args.seeds else None,
            jobs=args.jobs,
            launcher=launcher,
            verbose=args.verbose,
        )
    except RunsFailedError as error:  # the other runs finished: report them, then fail
        failed, directory = error, error.directory
    # The runner writes results only; the report reads them from disk (experiments and report
    # are siblings and do not import each other).
    started = time.perf_counter()
    index = build_report(directory)
    print(f"report: {index}")
    print(f"losslab compare: report built in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)  # beside the runner's time line (stdout keeps the path alone)
    if failed is not None:
        print(f"losslab compare: {len(failed.failures)} run(s) failed:", file=sys.stderr)
        for name, error_line in failed.failures.items():
            print(f"  {name}: {error_line}", file=sys.stderr)
        print("losslab compare: re-run the same command to retry them (finished runs are "
              "reused).", file=sys.stderr)
        return 1
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from losslab.experiments import json_schema

    text = json.dumps(json_schema(args.kind), indent=2) + "\n"
    if args.output:
        from losslab.core.atomic import write_text_atomic

        print(f"schema: {write_text_atomic(Path(args.output), text)}")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from losslab.report import build_report

    print(f"report: {build_report(Path(args.dir))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``losslab`` command."""
    parser = argparse.ArgumentParser(
        prog="losslab",
        description="What does my loss function consider equal, and what does that do to my outputs?",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help=f"show the Python traceback of a failure (or set {DEBUG_ENV}=1)")
    # `losslab --debug CMD` as well as `losslab CMD --debug` (a separate name: a subcommand's
    # default would overwrite the main parser's value)
    parser.add_argument("--debug", action="store_true", dest="debug_global", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("losses", parents=[common], help="list every loss with its parameters")
    p.set_defaults(handler=_cmd_losses)

    p = sub.add_parser("weights", parents=[common], help="pretrained networks: cache status, or 'add FILE'")
    p.add_argument("action", nargs="?", choices=["list", "add"], default="list")
    p.add_argument("file", nargs="?")
    p.add_argument("--verify", action="store_true",
                   help="hash every present file against its expected SHA-256 (slower)")
    p.set_defaults(handler=_cmd_weights)

    threads = argparse.ArgumentParser(add_help=False)
    threads.add_argument("--threads", type=int, metavar="N",
                         help="fix torch's CPU threads per training at N (sets LOSSLAB_THREADS; "
                              "the thread rule then stays off): runs repeat bit for bit across "
                              "machine loads (docs/reproducibility.md)")
    p = sub.add_parser("train", parents=[common, threads],
                       help="train one model under one loss spec")
    p.add_argument("--config", help="YAML config (command-line options override it)")
    p.add_argument("--task", help="the task (default reconstruct); `losslab schema train` lists "
                                  "every value of every field")
    p.add_argument("--data", help="bundled | dead_leaves | moving_shapes | cifar10 | stl10 | celeba | "
                                  "mnist, or a folder of your images")
    p.add_argument("--loss", help='loss spec, e.g. "l1(luma)" or "mse + 0.01*perceptual"')
    p.add_argument("--steps", type=int, help="optimisation steps")
    p.add_argument("--out", help="run directory (re-running the same command resumes)")
    p.add_argument("--seed", type=int)
    p.add_argument("--devices", help="number of devices, or 'auto'")
    p.add_argument("--num-nodes", type=int, dest="num_nodes")
    p.add_argument("--precision", help="32 | 16-mixed | bf16-mixed")
    p.add_argument("--accelerator", help="auto | cpu | gpu")
    p.add_argument("--hypotheses", type=int, help="K outputs (winner-takes-all) instead of one")
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--crop-size", type=int, dest="crop_size")
    p.add_argument("--lr", type=float)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any other config field, e.g. --set task_options.scale=4 (repeatable)")
    p.add_argument("--verbose", action="store_true",
                   help="show Lightning's own progress bars, messages and warnings (by default: "
                        "one progress line, step, loss and time left)")
    p.set_defaults(handler=_cmd_train)

    p = sub.add_parser("evaluate", parents=[common], help="metrics of a trained run (JSON and CSV in the run dir)")
    p.add_argument("run_dir")
    p.add_argument("--samples", type=_sample_count, default=8, metavar="S",
                   help="samples drawn per validation input when the run's model is stochastic "
                        "(seeded; default 8; ignored for deterministic models)")
    p.set_defaults(handler=_cmd_evaluate)

    p = sub.add_parser("probe", parents=[common], help="what each loss charges for controlled image changes")
    p.add_argument("specs", nargs="*",
                   help="loss specs (default: the pixel losses, ssim and every loss that needs "
                        "no downloaded weights: swd, nlpd, gmsd, ms_gmsd, haarpsi, mdsi, "
                        "ciede2000, delta_e76, flip, ms_flip, robust, "
                        "energy_score, crps, "
                        "wavelet, gradient_variance, swd(colorspace=lab), "
                        "perceptual(weights=random) with mse and swd distances, "
                        "contextual(weights=random), dists(weights=random))")
    p.add_argument("--images", help="folder of images (default: bundled photos)")
    p.add_argument("--rmse", type=float, default=0.05, help="matched pixel RMSE (default 0.05)")
    p.add_argument("--perturbations",
                   help="comma-separated subset (default: all): hue, saturation, brightness, "
                        "channel_red, channel_green, channel_blue, blur, noise, jpeg, contrast, "
                        "shift, mean_of_two, mean_of_two_noise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results as JSON")
    p.add_argument("--csv", help="write the results as CSV")
    p.add_argument("--heatmap", help="write a heatmap PNG")
    p.set_defaults(handler=_cmd_probe)

    p = sub.add_parser("demo", parents=[common], help="small demonstrations")
    p.add_argument("name", choices=["mean"], help="mean: regression to the mean / median / modes")
    p.add_argument("--out", help="folder for the plots")
    p.add_argument("--json", help="write the numbers as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_cmd_demo)

    p = sub.add_parser("equal", parents=[common], help="images each loss considers equal to a photo (metamers)")
    p.add_argument("specs", nargs="+", help="loss specs (no adversarial terms)")
    p.add_argument("--image", default="astronaut",
                   help="bundled photo name (astronaut, chelsea, coffee, ...) or an image file "
                        "(default astronaut)")
    p.add_argument("--out", required=True, help="folder for equal.png and equal.json")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.add_argument("--starts", default="noise,blur,photo",
                   help="comma-separated starts: noise, blur, photo, photo:NAME "
                        "(default noise,blur,photo)")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps (default 300)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam step size in [0, 1] pixel units (default 0.05; 0.1 with the "
                        "automatic continuation of gdl, gmsd, ms_gmsd, haarpsi)")
    p.add_argument("--continuation", type=_continuation_arg, default="auto",
                   metavar="SIGMA|auto|max|off",
                   help="descend the loss of blurred images first, from this blur sigma (px; "
                        "max: a third of the image) down to none over 2/3 of the steps. auto "
                        "(default): max, 3 cycles, lr 0.1 for losses blind to edge signs (gdl, "
                        "gmsd, ms_gmsd, haarpsi), whose plain descent stops in local minima; "
                        "off for the others")
    p.add_argument("--cycles", type=int, default=None,
                   help="run the whole schedule this many times, each from the last one's "
                        "images at half its step size, keeping each start's best (default: 3 "
                        "with the automatic continuation, else 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default cpu)")
    p.set_defaults(handler=_cmd_equal)

    p = sub.add_parser("mad", parents=[common], help="MAD competition between two losses")
    p.add_argument("spec_a", help="loss A (held while B is optimised, then optimised)")
    p.add_argument("spec_b", help="loss B")
    p.add_argument("--image", default="astronaut",
                   help="bundled photo name or an image file (default astronaut)")
    p.add_argument("--out", required=True, help="folder for mad.png and mad.json")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.add_argument("--noise", type=float, default=0.1,
                   help="noise standard deviation of the start, [0, 1] units (default 0.1)")
    p.add_argument("--steps", type=int, default=200, help="steps per image (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, ... (default cpu)")
    p.set_defaults(handler=_cmd_mad)

    p = sub.add_parser("compare", parents=[common, threads], help="train one model per loss and write an HTML report")
    p.add_argument("experiment", nargs="?", help="experiment YAML or a shipped name (colors, blur, ...)")
    p.add_argument("--out", help="output folder (default: runs/<experiment name>)")
    p.add_argument("--steps", type=int, help="override every run's step budget")
    p.add_argument("--budget-scale", type=float, default=1.0, dest="budget_scale",
                   help="multiply every run's step budget (e.g. 10 on a GPU)")
    p.add_argument("--perceptual-weights", dest="perceptual_weights",
                   metavar="imagenet|random|auto|PATH",
                   help="weights of every perceptual term that names none: imagenet, random "
                        "(offline; the report flags it), auto (imagenet where the file is "
                        "cached, else random) or the path of a VGG19 state dict file "
                        "(torchvision format); default: the experiment file's choice")
    p.add_argument("--seeds", metavar="0,1,2",
                   help="train every entry once per seed, all on the same validation images; "
                        "the report shows means with their min-max range (default: the "
                        "experiment's seeds, else budget.seed)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="train up to N runs at once on this machine, one process each (CPU "
                        "cores shared by the thread rule; GPUs: --devices-per-job each)")
    p.add_argument("--devices-per-job", type=int, dest="devices_per_job", metavar="K",
                   help="with --jobs on a GPU machine: GPUs each job sees (default 1)")
    p.add_argument("--launcher", choices=["local", "slurm"],
                   help="local (this machine, default) or slurm: one job per run through "
                        "submitit; the report is built when all are done")
    p.add_argument("--partition", help="slurm: the partition")
    p.add_argument("--time", type=int, metavar="MINUTES", help="slurm: time limit per job")
    p.add_argument("--gpus-per-job", type=int, dest="gpus_per_job", help="slurm: GPUs per job")
    p.add_argument("--cpus-per-job", type=int, dest="cpus_per_job", help="slurm: CPUs per job")
    p.add_argument("--mem", type=int, metavar="GB", help="slurm: memory per job, GB")
    p.add_argument("--list", action="store_true", help="list the shipped experiments")
    p.add_argument("--verbose", action="store_true",
                   help="show each run's Lightning progress bar, messages and warnings")
    p.set_defaults(handler=_cmd_compare)

    p = sub.add_parser("report", parents=[common], help="rebuild a comparison's HTML report from disk")
    p.add_argument("dir")
    p.set_defaults(handler=_cmd_report)

    p = sub.add_parser("schema", parents=[common],
                       help="JSON Schema of training configs or experiment files (for editors)")
    p.add_argument("kind", choices=["train", "experiment"],
                   help="train: config.yaml / --config files; experiment: losslab compare files")
    p.add_argument("--output", "-o", help="write the schema to this file (atomically) instead "
                                          "of printing it")
    p.set_defaults(handler=_cmd_schema)
    return parser


#: Set to 1 (or pass ``--debug``) to see the Python traceback of a failure.
DEBUG_ENV = "LOSSLAB_DEBUG"


def _debug_requested(args: argparse.Namespace) -> bool:
    flags = getattr(args, "debug", False) or getattr(args, "debug_global", False)
    return bool(flags) or os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def describe_error(error: BaseException) -> str:
    """One line naming the problem and the fix for any failure of a command.

    losslab's own errors (``ValueError``/``TypeError`` and their subclasses) already name both and
    are passed through, flattened to one line (a loss-spec error keeps its two context lines: the
    spec and a caret under the offending position). Errors from below (the OS, YAML, Lightning,
    the allocator, Python's recursion limit) get a sentence that says what to change.
    """
    from losslab.losses.spec import SpecError

    text = " ".join(str(error).split())
    if isinstance(error, SpecError):  # "message at position N in loss spec:\n  spec\n  ^"
        return str(error).rstrip()
    name = type(error).__name__
    if name == "MisconfigurationException":  # Lightning: e.g. --accelerator gpu without a GPU
        return (f"{text} Use --accelerator cpu (or auto, which picks a GPU only when one is "
                "present), or check --devices / --precision.")
    if isinstance(error, RecursionError):
        return ("an input is nested too deeply to read (Python's recursion limit); simplify the "
                "value (lists in a loss spec or a YAML file need 2 levels at most).")
    if isinstance(error, MemoryError) or "can't allocate memory" in text \
            or "out of memory" in text.lower():
        return ("out of memory: a size is too large for this machine "
                f"({text[:160]}). Lower data.batch_size, data.crop_size or the model/discriminator "
                "width.")
    if isinstance(error, OverflowError):
        return (f"a number is too large ({text}); use a finite value in the documented range "
                "(steps and seeds are integers, e.g. --seed 0).")
    if isinstance(error, FileNotFoundError) and error.filename is None:
        return text  # losslab's own message
    if isinstance(error, (FileExistsError, NotADirectoryError)) and error.filename is not None:
        return (f"{str(error.filename)!r} (or a folder above it) is a file, not a folder; give "
                "--out a folder path that is free or holds a losslab run.")
    if isinstance(error, OSError) and getattr(error, "filename", None) is not None:
        reason = error.strerror or text
        return (f"cannot write or read {str(error.filename)!r}: {reason}. Choose a writable "
                "location (e.g. --out runs/NAME in your home or project folder) or fix the "
                "permissions.")
    if isinstance(error, (ValueError, TypeError, FileNotFoundError, RuntimeError,
                          FloatingPointError)):
        return text
    return (f"unexpected {name}: {text}. Rerun with --debug (or {DEBUG_ENV}=1) to see the "
            "traceback, and report it.")


def _fix_threads(threads: int | None) -> None:
    """``--threads N``: ``LOSSLAB_THREADS=N`` for this process and the workers and jobs it
    starts (the thread rule reads it, see ``losslab.train.threads``)."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be a positive integer; got {threads}.")
    os.environ["LOSSLAB_THREADS"] = str(threads)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a ``losslab`` command; returns the exit status.

    Every failure prints one line ``losslab COMMAND: error: ...`` naming the problem and the fix,
    and returns 2; no traceback unless ``--debug`` is given or ``LOSSLAB_DEBUG=1`` is set. A run
    stopped by SIGTERM or Ctrl-C checkpoints, says so, and returns 143 or 130.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _fix_threads(getattr(args, "threads", None))
        return int(args.handler(args))
    except BrokenPipeError:  # `losslab losses | head` closed the pipe: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        if _debug_requested(args):
            raise
        print(f"losslab {args.command}: interrupted (Ctrl-C).", file=sys.stderr)
        return 130
    except Exception as error:
        if _debug_requested(args):
            raise
        exit_code = getattr(error, "exit_code", None)  # TrainingInterrupted: 143 or 130
        if isinstance(exit_code, int):
            print(f"losslab {args.command}: {' '.join(str(error).split())}", file=sys.stderr)
            return exit_code
        print(f"losslab {args.command}: error: {describe_error(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
