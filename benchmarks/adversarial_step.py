"""Time losslab's adversarial generator + discriminator step against a hand-written GAN step.

Both sides do the same work per step on the same data: a generator forward, ``L1 + 0.01 *
hinge generator loss`` through the same PatchGAN architecture (D frozen during the generator
loss), a generator Adam step, then one discriminator update (real and detached fake forwards,
hinge loss, Adam step with betas (0.5, 0.999)). Value checks are off on the losslab side (the
hand-written step has none). Prints per-step times and the ratio losslab / plain (target <= 1.10).

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
from losslab.losses import adversarial_terms
from losslab.models.discriminators import PatchDiscriminator


def generator(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 3, 3, padding=1), nn.Sigmoid(),
    )


def losslab_step_factory(
    model: nn.Module, disc_width: int, disc_depth: int, device: torch.device
) -> tuple[Callable, nn.Module]:
    criterion = losslab.loss(
        f"l1 + 0.01*adversarial(objective=hinge, width={disc_width}, depth={disc_depth})",
        check_values=False,
    ).to(device)
    gan_terms = adversarial_terms(criterion)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        prediction = model(inputs)
        loss = criterion(prediction, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for term in gan_terms:
            term.discriminator_step(prediction, targets)

    return step, gan_terms[0].discriminator


def plain_step_factory(model: nn.Module, disc: nn.Module) -> Callable:
    g_optimizer = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_optimizer = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        prediction = model(inputs)
        for p in disc.parameters():
            p.requires_grad_(False)
        g_adv = -disc(prediction * 2 - 1).mean()
        for p in disc.parameters():
            p.requires_grad_(True)
        loss = F.l1_loss(prediction, targets) + 0.01 * g_adv
        g_optimizer.zero_grad()
        loss.backward()
        g_optimizer.step()
        d_optimizer.zero_grad(set_to_none=True)
        real_logits = disc(targets * 2 - 1)
        fake_logits = disc(prediction.detach() * 2 - 1)
        d_loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        d_loss.backward()
        d_optimizer.step()
        d_optimizer.zero_grad(set_to_none=True)
        # losslab returns float logs (d_loss, logits, accuracy): the same device syncs here.
        float(d_loss.detach()), float(real_logits.detach().mean()), float(fake_logits.detach().mean())

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
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    torch.manual_seed(0)
    base_model = generator(16).to(device)
    model_a, model_b = copy.deepcopy(base_model), copy.deepcopy(base_model)
    ours, ours_disc = losslab_step_factory(model_a, args.width, args.depth, device)
    plain_disc = PatchDiscriminator(3, args.width, args.depth).to(device)
    plain_disc.load_state_dict(ours_disc.state_dict())
    plain = plain_step_factory(model_b, plain_disc)
    inputs = torch.rand(args.batch, 3, args.size, args.size, device=device)
    targets = torch.rand(args.batch, 3, args.size, args.size, device=device)

    def timed(step: Callable) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            step(inputs, targets)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / args.steps

    for step in (ours, plain):  # warm-up
        timed(step)
    ours_times, plain_times = [], []
    for _ in range(args.rounds):  # interleaved rounds: drifting machine load hits both alike
        ours_times.append(timed(ours))
        plain_times.append(timed(plain))
    ours_ms, plain_ms = 1e3 * statistics.median(ours_times), 1e3 * statistics.median(plain_times)
    print(
        f"device={device} threads={torch.get_num_threads()} batch={args.batch} "
        f"size={args.size} D(width={args.width}, depth={args.depth})"
    )
    print(f"losslab adversarial step: {ours_ms:8.2f} ms (median of {args.rounds} rounds)")
    print(f"plain PyTorch GAN step:   {plain_ms:8.2f} ms")
    print(f"ratio losslab / plain:    {ours_ms / plain_ms:8.3f}  (target <= 1.10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
