"""Time losslab's adversarial generator + discriminator step against a hand-written GAN step.

Both sides do the same work per step on the same data: a generator forward, ``L1 + 0.01 *
hinge generator loss`` through the same discriminator architecture (D frozen during the
generator loss), a generator Adam step, then one discriminator update (real and detached fake
forwards, hinge loss, Adam step with betas (0.5, 0.999)). Value checks are off on the losslab
side (the hand-written step has none). Variants, each against its own plain twin, timed in
interleaved rounds of the same run:

- ``patch``: the PatchGAN;
- ``patch+ema``: plus an EMA of the generator's weights after every step (losslab's
  :func:`~losslab.train.ema.update_ema` against a per-parameter ``mul_/add_`` loop);
- ``multiscale``: the PatchGAN at 2 scales (pix2pixHD), the objective averaged over scales;
- ``unet_sn``: the U-Net discriminator with spectral norm (Real-ESRGAN), per-pixel logits.

Prints per-step times and the ratio losslab / plain (target <= 1.10).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/adversarial_step.py [--device cpu]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import losslab
from losslab.models.discriminators import build_discriminator
from losslab.train.adversarial import attach_discriminators
from losslab.train.ema import make_ema, update_ema

#: Variant name -> (disc= option of the adversarial term, with an EMA).
VARIANTS = {"patch": ("patch", False), "patch+ema": ("patch", True),
            "multiscale": ("multiscale", False), "unet_sn": ("unet_sn", False)}
EMA_DECAY = 0.999


def generator(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 3, 3, padding=1), nn.Sigmoid(),
    )


def losslab_step_factory(
    model: nn.Module, disc: str, ema: bool, disc_width: int, disc_depth: int, device: torch.device
) -> tuple[Callable, nn.Module]:
    criterion = losslab.loss(
        f"l1 + 0.01*adversarial(objective=hinge, disc={disc}, width={disc_width}, "
        f"depth={disc_depth})",
        check_values=False,
    )
    discriminators = attach_discriminators(criterion, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    average = make_ema(model) if ema else None

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        prediction = model(inputs)
        loss = criterion(prediction, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if average is not None:
            update_ema(average, model, EMA_DECAY)
        for d in discriminators:
            d.step(prediction, targets)

    return step, discriminators[0].discriminator


def _as_list(logits: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return logits if isinstance(logits, list) else [logits]


def plain_step_factory(model: nn.Module, disc: nn.Module, ema: bool) -> Callable:
    g_optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_optimizer = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    average = copy.deepcopy(model).requires_grad_(False) if ema else None

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        prediction = model(inputs)
        for p in disc.parameters():
            p.requires_grad_(False)
        fake_maps = _as_list(disc(prediction * 2 - 1))
        g_adv = sum(-m.mean() for m in fake_maps) / len(fake_maps)
        for p in disc.parameters():
            p.requires_grad_(True)
        loss = F.l1_loss(prediction, targets) + 0.01 * g_adv
        g_optimizer.zero_grad()
        loss.backward()
        g_optimizer.step()
        if average is not None:
            with torch.no_grad():
                for a, p in zip(average.parameters(), model.parameters(), strict=True):
                    a.mul_(EMA_DECAY).add_(p, alpha=1 - EMA_DECAY)
        d_optimizer.zero_grad(set_to_none=True)
        real_maps = _as_list(disc(targets * 2 - 1))
        fake_maps = _as_list(disc(prediction.detach() * 2 - 1))
        d_loss = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean()
                     for r, f in zip(real_maps, fake_maps, strict=True)) / len(real_maps)
        d_loss.backward()
        d_optimizer.step()
        d_optimizer.zero_grad(set_to_none=True)
        # losslab returns float logs (d_loss, logits, accuracy): the same device syncs here.
        float(d_loss.detach())
        for r, f in zip(real_maps, fake_maps, strict=True):
            float(r.detach().mean()), float(f.detach().mean())
            float(((r.detach() > 0).sum() + (f.detach() < 0).sum()) / (r.numel() + f.numel()))

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32, help="discriminator width")
    parser.add_argument("--depth", type=int, default=3, help="discriminator depth")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {', '.join(VARIANTS)}")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    names = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")

    torch.manual_seed(0)
    base_model = generator(16).to(device)
    inputs = torch.rand(args.batch, 3, args.size, args.size, device=device)
    targets = torch.rand(args.batch, 3, args.size, args.size, device=device)
    pairs: dict[str, tuple[Callable, Callable]] = {}
    for name in names:
        disc, ema = VARIANTS[name]
        ours, ours_disc = losslab_step_factory(copy.deepcopy(base_model), disc, ema, args.width,
                                               args.depth, device)
        options = {"width": args.width, "depth": args.depth}
        if disc == "patch":
            options["norm"] = "instance"
        plain_disc = build_discriminator(disc, **options).to(device)
        plain_disc.load_state_dict(ours_disc.state_dict())
        pairs[name] = (ours, plain_step_factory(copy.deepcopy(base_model), plain_disc, ema))

    def timed(step: Callable) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            step(inputs, targets)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / args.steps

    for ours, plain in pairs.values():  # warm-up
        timed(ours), timed(plain)
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pairs}
    for _ in range(args.rounds):  # interleaved rounds: drifting machine load hits all alike
        for name, (ours, plain) in pairs.items():
            times[name][0].append(timed(ours))
            times[name][1].append(timed(plain))
    print(
        f"device={device} threads={torch.get_num_threads()} batch={args.batch} "
        f"size={args.size} D(width={args.width}, depth={args.depth}); median of {args.rounds} "
        f"rounds of {args.steps} steps"
    )
    print(f"{'variant':<12} {'losslab ms':>11} {'plain ms':>10} {'ratio':>7}  (target <= 1.10)")
    for name, (ours_times, plain_times) in times.items():
        ours_ms = 1e3 * statistics.median(ours_times)
        plain_ms = 1e3 * statistics.median(plain_times)
        print(f"{name:<12} {ours_ms:11.2f} {plain_ms:10.2f} {ours_ms / plain_ms:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
