"""Measure issue 14's targets for loss metamers and MAD at full size (a bundled photo, 128 px).

Run on demand (not part of the test suite)::

    python benchmarks/synthesis_targets.py [--size 128] [--steps 300] [--threads 2]
        [--device cpu|cuda] [--json out.json] [--vgg] [--seeds 0,1,2] [--longer 4]
        [--continuation SIGMA|auto|max|off] [--cycles N] [--continuation-share 0.67] [--lr 0.05]

For every spec: metamers from noise, a blurred copy and another photo (``steps`` Adam steps
each), the loss reached relative to the start's (target <= 2 %, the worst start counts), the
wall time per spec (target <= 60 s for pixel, structural and weight-free losses on a 2-core
CPU; the first seed's run), and the
property checks: ``l1(luma)`` from noise: luma error <= 0.02, chroma error >= 5x that;
``l1(red)``: red error <= 0.02, green and blue >= 5x; ``mse``: RMSE <= 0.01. Then MAD between
``mse`` and ``ssim``: the two MSE-held images within 1 % of the start's MSE and >= 0.3 apart in
SSIM. ``--vgg`` adds the random-VGG feature terms (perceptual, contextual, DISTS) and MS-SWD
(``swd(colorspace=lab)``, 128 directions of 11 x 11 patches at 5 scales), reported with no time
target. Each line says
PASS or FAIL; the exit status is 1 if any target fails. Timings on a shared machine are
contended: compare them with the load average printed at the start.

``--seeds 0,1,2`` repeats the noise start with each seed (the blur and photo starts do not
depend on the seed) and counts the worst. ``--longer 4`` re-runs every start that missed the
2 % target with 4x the steps (same schedule, stretched) and prints what it reaches: a start
still far above 2 % is stuck (a local minimum of the loss), not short of steps. That
diagnosis is printed only; the target is judged at ``--steps``.

``--continuation SIGMA|auto|max|off`` passes ``continuation=`` to
:func:`losslab.synthesis.metamers` (the loss evaluated on blurred images, the blur shrinking from
SIGMA px to 0 over ``--continuation-share`` of the steps); default: the library's ``auto`` (the
coarsest blur and three cycles for losses blind to edge signs, off for the others). ``--cycles N``
runs the schedule N times. ``steps`` are per cycle; the time target counts every cycle.
``--lr`` sets the metamers' initial step size (MAD keeps its own).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from losslab.synthesis import load_image, mad, metamers

TIMED_SPECS = ("mse", "l1", "l1(luma)", "l1(red)", "charbonnier", "ssim", "gdl", "frequency",
               "nlpd", "gmsd", "ms_gmsd", "haarpsi", "mdsi", "swd", "ciede2000", "delta_e76",
               "flip", "ms_flip", "robust", "wavelet", "wavelet(mode=stationary)",
               "gradient_variance")
VGG_SPECS = ("perceptual(layers=relu1_2,relu2_2, weights=random)",
             "perceptual(weights=random)", "contextual(weights=random)", "dists(weights=random)",
             "swd(colorspace=lab)")
#: Specs with no wall-time target (deep feature networks, MS-SWD's 128 x 363-dim projections).
UNTIMED = ("perceptual", "lpips", "contextual", "dists", "colorspace=lab")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--image", default="astronaut")
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--vgg", action="store_true", help="also random-VGG perceptual terms")
    parser.add_argument("--specs", help="semicolon-separated specs to measure instead")
    parser.add_argument("--no-mad", action="store_true", help="skip the MAD target")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds of the noise start (worst counts)")
    parser.add_argument("--longer", type=int, default=0,
                        help="re-run starts that miss 2 %% with this many times the steps")
    parser.add_argument("--continuation", default=None,
                        help="starting blur sigma (px) of the continuation over scale, or "
                             "auto / max / off (default: the library's, auto)")
    parser.add_argument("--cycles", type=int, default=None,
                        help="cycles of the schedule (default: the library's)")
    parser.add_argument("--continuation-share", type=float, default=None,
                        help="share of the steps over which the blur shrinks to 0")
    parser.add_argument("--lr", type=float, default=None,
                        help="initial step size of the metamers (default: the library's)")
    args = parser.parse_args()
    options: dict[str, float | str | int] = {}
    if args.lr is not None:
        options["lr"] = args.lr
    if args.continuation is not None:
        try:
            options["continuation"] = float(args.continuation)
        except ValueError:
            options["continuation"] = args.continuation
    if args.cycles is not None:
        options["cycles"] = args.cycles
    if args.continuation_share is not None:
        options["continuation_share"] = args.continuation_share
    torch.set_num_threads(args.threads)
    print(f"image {args.image} {args.size} px, {args.steps} steps, {args.threads} threads, "
          f"device {args.device}, load average {os.getloadavg()}")
    target = load_image(args.image, args.size).to(args.device)
    failures: list[str] = []
    report: dict[str, object] = {"settings": vars(args), "load": os.getloadavg()}

    def check(name: str, passed: bool, text: str) -> None:
        print(f"  {'PASS' if passed else 'FAIL'}  {name}: {text}")
        if not passed:
            failures.append(name)

    specs = TIMED_SPECS + (VGG_SPECS if args.vgg else ())
    if args.specs:
        specs = tuple(spec.strip() for spec in args.specs.split(";") if spec.strip())
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    for spec in specs:
        began = time.perf_counter()
        result = metamers(spec, target, steps=args.steps, seed=seeds[0], **options)
        wall = time.perf_counter() - began
        report[spec] = {**result.to_dict(), "wall_seconds": wall}
        ratios = {name: row["loss_ratio"] for name, row in zip(result.start_names,
                                                               result.numbers, strict=True)}
        for seed in seeds[1:]:  # only the noise start depends on the seed
            again = metamers(spec, target, starts=["noise"], steps=args.steps, seed=seed,
                             **options)
            ratios[f"noise(seed {seed})"] = again["noise"]["loss_ratio"]
            report[spec][f"noise seed {seed}"] = again["noise"]  # type: ignore[index]
        print(f"{spec}: {wall:.1f} s ({result.schedule()}); loss / start: "
              + ", ".join(f"{k} {v:.2e}" for k, v in ratios.items()))
        worst = max(value for value in ratios.values() if value is not None)
        check(f"{spec} loss <= 2 % of start", worst <= 0.02, f"worst {100 * worst:.3f} %")
        if args.longer > 1 and worst > 0.02:
            missed = {name: value for name, value in ratios.items()
                      if value is not None and value > 0.02}
            longer = {}
            for name in missed:
                start, _, seed_text = name.partition("(seed ")
                seed = int(seed_text.rstrip(")")) if seed_text else seeds[0]
                rerun = metamers(spec, target, starts=[start], steps=args.steps * args.longer,
                                 seed=seed, **options)
                longer[name] = rerun[start]["loss_ratio"]
            report[spec]["longer"] = {"steps": args.steps * args.longer,  # type: ignore[index]
                                      "loss_ratio": longer}
            print(f"  diagnosis: {args.steps * args.longer} steps reach "
                  + ", ".join(f"{name} {100 * missed[name]:.1f} % -> {100 * value:.1f} %"
                              for name, value in longer.items()))
        if not any(part in spec for part in UNTIMED):
            check(f"{spec} <= 60 s", wall <= 60.0, f"{wall:.1f} s")
        noise = result["noise"]
        if spec == "l1(luma)":
            check("l1(luma) luma error <= 0.02", noise["err_luma"] <= 0.02,
                  f"{noise['err_luma']:.4f}")
            check("l1(luma) chroma >= 5x luma", noise["err_chroma"] >= 5 * noise["err_luma"],
                  f"chroma {noise['err_chroma']:.4f}")
        if spec == "l1(red)":
            check("l1(red) red error <= 0.02", noise["err_red"] <= 0.02, f"{noise['err_red']:.4f}")
            low = min(noise["err_green"], noise["err_blue"])
            check("l1(red) green, blue >= 5x red", low >= 5 * noise["err_red"],
                  f"green {noise['err_green']:.4f} blue {noise['err_blue']:.4f}")
        if spec == "mse":
            worst_rmse = max(row["rmse"] for row in result.numbers)
            check("mse RMSE <= 0.01", worst_rmse <= 0.01, f"worst {worst_rmse:.5f}")

    if not args.no_mad:
        began = time.perf_counter()
        competition = mad("mse", "ssim", target)
        wall = time.perf_counter() - began
        report["mad mse ssim"] = {**competition.to_dict(), "wall_seconds": wall}
        best, worst = competition.numbers["best_b"], competition.numbers["worst_b"]
        print(f"MAD mse vs ssim: {wall:.1f} s")
        for key in ("best_b", "worst_b"):
            held = competition.numbers[key]["ratio_a"]
            check(f"MAD {key}: MSE within 1 % of start", abs(held - 1) <= 0.01, f"{held:.5f}x")
        gap = best["ssim"] - worst["ssim"]
        check("MAD SSIM gap >= 0.3", gap >= 0.3,
              f"best {best['ssim']:.3f} worst {worst['ssim']:.3f} gap {gap:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("all targets met" if not failures else f"FAILED: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
