"""Time forward + backward of every registered loss against minimal PyTorch references.

Run on demand (not part of the test suite)::

    python benchmarks/losses.py [--device cpu|cuda] [--repeats N] [--threads T]

For each loss registered in :func:`losslab.losses.available_losses` that can be built offline
(``weights=random`` where the loss takes a ``weights`` parameter; anything that still cannot be
built or called is skipped with the reason), on a ``(16, 3, 128, 128)`` batch:

- ``losslab``: median time of ``loss(prediction, target).backward()`` with value checks off,
- ``checks``: the same with :func:`losslab.losses.set_value_checks` on (extra cost in percent),
- ``reference``: a hand-written minimal PyTorch version of the same formula, in this file,
- ``package``: the published implementation where one is installed (pytorch_msssim for SSIM and
  MS-SSIM, piq for GMSD, MS-GMSD, HaarPSI and MDSI, plenoptic for NLPD, ptwt's ``wavedec2`` for
  the wavelet transform of ``wavelet``, DISTS_pytorch for ``dists`` on the same random trunk and
  alpha/beta, colour-science for CIEDE2000 and ΔE*76, NVIDIA's flip_evaluator for FLIP),
  value-checked too; colour-science and flip_evaluator are numpy/compiled CPU code without
  gradients, so their time is a forward pass on the CPU (losslab's is still forward + backward,
  on ``--device``),
- ratios ``losslab / reference`` (target <= 1.10 with checks off) and ``losslab / package``
  (target <= 1.0),
- peak extra memory of one forward + backward (CUDA only).

MS-SSIM with 5 scales needs sides of at least 161 px (valid-region windows), so its rows use a
``(16, 3, 176, 176)`` batch instead of 128 x 128. The candidates are timed round-robin within
each repeat so that load from other processes affects all of them alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

import losslab
from losslab.losses import available_losses, get_loss_entry, set_value_checks

LossFunction = Callable[[Tensor, Tensor], Tensor]
#: Published references without gradients (numpy / compiled CPU code): timed as a forward pass,
#: beside which the table also gives losslab's forward pass alone.
FORWARD_ONLY_PACKAGES = ("colour-science", "flip_evaluator")
BATCH = (16, 3, 128, 128)
MS_SSIM_BATCH = (16, 3, 176, 176)

# -- minimal references: the textbook formula, written the obvious way --------------------------
LUMA = (0.299, 0.587, 0.114)


def _gaussian(size: int = 11, sigma: float = 1.5) -> Tensor:
    coords = torch.arange(size, dtype=torch.float32) - size // 2
    window = torch.exp(-(coords**2) / (2 * sigma**2))
    return window / window.sum()


def _filter(x: Tensor, window: Tensor) -> Tensor:
    channels = x.shape[1]
    x = F.conv2d(x, window.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(x, window.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def _reference_ssim_cs(x: Tensor, y: Tensor, window: Tensor) -> tuple[Tensor, Tensor]:
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = _filter(x, window), _filter(y, window)
    var_x = _filter(x * x, window) - mu_x**2
    var_y = _filter(y * y, window) - mu_y**2
    cov = _filter(x * y, window) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs
    return ssim_map.mean(dim=(2, 3)), cs.mean(dim=(2, 3))


def reference_ssim(x: Tensor, y: Tensor) -> Tensor:
    return 1 - _reference_ssim_cs(x, y, _gaussian().to(x.device))[0].mean()


def reference_ms_ssim(x: Tensor, y: Tensor) -> Tensor:
    weights = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333], device=x.device)
    window = _gaussian().to(x.device)
    values = []
    for scale in range(5):
        if scale:
            x, y = F.avg_pool2d(x, 2, ceil_mode=True), F.avg_pool2d(y, 2, ceil_mode=True)
        ssim_value, cs = _reference_ssim_cs(x, y, window)
        values.append(torch.relu(cs if scale < 4 else ssim_value))
    return 1 - torch.prod(torch.stack(values) ** weights.view(-1, 1, 1), dim=0).mean()


def reference_gdl(x: Tensor, y: Tensor) -> Tensor:
    dx = ((x[..., 1:] - x[..., :-1]).abs() - (y[..., 1:] - y[..., :-1]).abs()).abs().mean()
    dy = ((x[..., 1:, :] - x[..., :-1, :]).abs() - (y[..., 1:, :] - y[..., :-1, :]).abs()).abs()
    return dx + dy.mean()


def reference_frequency(x: Tensor, y: Tensor) -> Tensor:
    return (torch.fft.fft2(x, norm="ortho") - torch.fft.fft2(y, norm="ortho")).abs().mean()


def _luma(x: Tensor) -> Tensor:
    return LUMA[0] * x[:, 0:1] + LUMA[1] * x[:, 1:2] + LUMA[2] * x[:, 2:3]


def reference_gradient_variance(x: Tensor, y: Tensor, patch: int = 8) -> Tensor:
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel, sobel.T]).unsqueeze(1).to(x)

    def variances(image: Tensor) -> Tensor:
        gradients = F.conv2d(_luma(image), kernels, padding=1)  # (N, 2, H, W)
        tiles = F.unfold(gradients, patch, stride=patch)  # (N, 2 * p * p, L)
        return tiles.view(image.shape[0], 2, patch * patch, -1).var(dim=2)

    return (variances(x) - variances(y)).square().mean(dim=(0, 2)).sum()


REFERENCES: dict[str, LossFunction] = {
    "mse": lambda x, y: F.mse_loss(x, y),
    "l1": lambda x, y: F.l1_loss(x, y),
    "l1(luma)": lambda x, y: F.l1_loss(_luma(x), _luma(y)),
    "charbonnier": lambda x, y: torch.sqrt((x - y) ** 2 + 1e-6).mean(),
    "huber": lambda x, y: F.huber_loss(x, y, delta=0.1),
    "ssim": reference_ssim,
    "ms_ssim": reference_ms_ssim,
    "gdl": reference_gdl,
    "frequency": reference_frequency,
    # robust's default (alpha = 1, scale = 0.05): pseudo-Huber in the scaled difference
    "robust": lambda x, y: (torch.sqrt(((x - y) / 0.05) ** 2 + 1) - 1).mean(),
    "gradient_variance": reference_gradient_variance,
}


def _numpy_images(x: Tensor) -> np.ndarray:
    return x.detach().cpu().permute(0, 2, 3, 1).double().numpy()


def _colour_science(kind: str) -> LossFunction:
    """colour-science's sRGB -> XYZ -> Lab and its ΔE (numpy, CPU, no gradient)."""
    import colour

    difference = {"ciede2000": colour.difference.delta_E_CIE2000,
                  "delta_e76": colour.difference.delta_E_CIE1976}[kind]

    def evaluate(x: Tensor, y: Tensor) -> Tensor:
        lab_x, lab_y = (colour.XYZ_to_Lab(colour.sRGB_to_XYZ(_numpy_images(v))) for v in (x, y))
        return torch.tensor(float(difference(lab_y, lab_x).mean()))

    return evaluate


def _flip_evaluator(x: Tensor, y: Tensor) -> Tensor:
    """NVIDIA's flip-evaluator (compiled, CPU, one image per call, no gradient): mean FLIP."""
    import flip_evaluator

    values = [flip_evaluator.evaluate(reference.astype("float32"), test.astype("float32"), "LDR",
                                      applyMagma=False)[1]
              for reference, test in zip(_numpy_images(y), _numpy_images(x), strict=True)]
    return torch.tensor(sum(values) / len(values))


def _nlpd_plenoptic(x: Tensor, y: Tensor) -> Tensor:
    import plenoptic

    # plenoptic's NLPD on luma (our default view) is sqrt(eps) = 1e-5 above ours by definition.
    return plenoptic.metric.nlpd(_luma(x), _luma(y)).mean() - 1e-5


def _wavelet_ptwt(x: Tensor, y: Tensor) -> Tensor:
    import ptwt

    # wavelet's defaults: haar, 3 levels, reflect boundary, L1, the 4 bands weighted equally.
    bands_x = ptwt.wavedec2(x, "haar", level=3, mode="reflect")
    bands_y = ptwt.wavedec2(y, "haar", level=3, mode="reflect")
    total = (bands_x[0] - bands_y[0]).abs().mean()
    for details_x, details_y in zip(bands_x[1:], bands_y[1:], strict=True):
        total = total + torch.stack(
            [(a - b).abs().mean() for a, b in zip(details_x, details_y, strict=True)]).mean()
    return total / 4


def _dists_package(criterion: torch.nn.Module) -> LossFunction:
    """DISTS_pytorch's model carrying the same (random) trunk and alpha/beta as ``criterion``."""
    import types

    import torchvision
    from DISTS_pytorch import DISTS_pt

    network = criterion.network
    vgg = torchvision.models.vgg16()
    trunk = {}
    for stage, (start, _) in zip(network.stages, ((0, 4), (5, 9), (10, 16), (17, 23), (24, 30)),
                                 strict=True):
        convs = [m for m in stage if isinstance(m, torch.nn.Conv2d)]
        indices = [i for i in range(start, 30) if isinstance(vgg.features[i], torch.nn.Conv2d)]
        for conv, index in zip(convs, indices, strict=False):
            trunk[f"{index}.weight"], trunk[f"{index}.bias"] = conv.weight, conv.bias
    vgg.features.load_state_dict(trunk, strict=False)
    original = DISTS_pt.models
    DISTS_pt.models = types.SimpleNamespace(vgg16=lambda **_: vgg)  # no ImageNet download
    try:
        model = DISTS_pt.DISTS(load_weights=False)
    finally:
        DISTS_pt.models = original
    model.alpha.data = network.alpha.view(1, -1, 1, 1).clone()
    model.beta.data = network.beta.view(1, -1, 1, 1).clone()
    model = model.to(network.alpha.device)
    return lambda x, y: model(x, y, require_grad=True, batch_average=True)


def _package_reference(
    spec: str, criterion: torch.nn.Module | None = None
) -> tuple[str, LossFunction] | None:
    """The published implementation a loss is checked and timed against, if one is installed:
    pytorch_msssim (SSIM, MS-SSIM), piq (GMSD, MS-GMSD, HaarPSI, MDSI), plenoptic (NLPD), ptwt
    (the wavelet transform), DISTS_pytorch (DISTS on ``criterion``'s random weights)."""
    try:
        if spec == "wavelet":
            import ptwt  # noqa: F401  (imported here only to see that it is installed)

            return "ptwt", _wavelet_ptwt
        if spec == "dists(weights=random)" and criterion is not None:
            return "DISTS_pytorch", _dists_package(criterion)
        if spec in ("ssim", "ms_ssim"):
            import pytorch_msssim

            if spec == "ssim":
                return "pytorch_msssim", lambda x, y: 1 - pytorch_msssim.ssim(x, y, data_range=1.0)
            return "pytorch_msssim", lambda x, y: 1 - pytorch_msssim.ms_ssim(x, y, data_range=1.0)
        if spec in ("gmsd", "ms_gmsd", "haarpsi", "mdsi"):
            import piq

            functions: dict[str, LossFunction] = {
                "gmsd": piq.gmsd,
                "ms_gmsd": piq.multi_scale_gmsd,
                "haarpsi": lambda x, y: 1 - piq.haarpsi(x, y),
                "mdsi": piq.mdsi,
            }
            return "piq", functions[spec]
        if spec == "nlpd":
            import plenoptic  # noqa: F401  (imported here only to see that it is installed)

            return "plenoptic", _nlpd_plenoptic
        if spec in ("ciede2000", "delta_e76"):
            return "colour-science", _colour_science(spec)
        if spec == "flip":
            import flip_evaluator  # noqa: F401  (imported here only to see that it is installed)

            return "flip_evaluator", _flip_evaluator
    except ImportError:
        return None
    return None


# -- timing -------------------------------------------------------------------------------------
@dataclass
class Row:
    spec: str
    shape: tuple[int, ...]
    losslab_ms: float | None = None
    checks_ms: float | None = None
    reference_ms: float | None = None
    package: str = ""
    package_ms: float | None = None
    losslab_mib: float | None = None
    reference_mib: float | None = None
    note: str = ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(function: LossFunction, prediction: Tensor, target: Tensor) -> None:
    prediction.grad = None
    value = function(prediction, target)
    if value.requires_grad:  # numpy references (colour-science, flip_evaluator): forward only
        value.backward()


def _peak_mib(function: LossFunction, prediction: Tensor, target: Tensor) -> float | None:
    if prediction.device.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated()
    _step(function, prediction, target)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - baseline) / 2**20


def _time_round_robin(
    candidates: dict[str, Callable[[], None]],
    repeats: int,
    device: torch.device,
    statistic: Callable[[list[float]], float] = statistics.median,
) -> dict[str, float]:
    """Milliseconds of each candidate (median by default), run in turn within every repeat."""
    for run in candidates.values():  # warm-up: allocator, cuDNN/oneDNN choices, caches
        for _ in range(2):
            run()
    _sync(device)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            _sync(device)
            start = time.perf_counter()
            run()
            _sync(device)
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistic(values) for name, values in samples.items()}


def _build(name: str) -> tuple[str, torch.nn.Module]:
    entry = get_loss_entry(name)
    spec = f"{name}(weights=random)" if "weights" in entry.parameter_names() else name
    return spec, losslab.loss(spec)


def _inputs(shape: tuple[int, ...], device: torch.device) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(shape, generator=generator)
    noise = 0.1 * torch.randn(shape, generator=generator)
    prediction = (target + noise).clamp(0, 1)
    return prediction.to(device).requires_grad_(True), target.to(device)


def benchmark(
    device: torch.device,
    repeats: int,
    only: set[str] | None = None,
    statistic: Callable[[list[float]], float] = statistics.median,
) -> list[Row]:
    specs: list[tuple[str, str]] = []  # (registered name, spec to build)
    for name in available_losses():
        specs.append((name, name))
        if name == "l1":
            specs.append((name, "l1(luma)"))
        if name == "swd":
            specs.append((name, "swd(colorspace=lab)"))  # MS-SWD: no package reference
    rows = []
    for name, spec in specs:
        if only and name not in only and spec not in only:
            continue
        shape = MS_SSIM_BATCH if name == "ms_ssim" else BATCH
        row = Row(spec, shape)
        rows.append(row)
        try:
            built_spec, criterion = (_build(name) if spec == name else (spec, losslab.loss(spec)))
            row.spec = built_spec
            criterion = criterion.to(device)
            prediction, target = _inputs(shape, device)
            condition = target if getattr(criterion, "uses_condition", False) else None

            def run_losslab(
                criterion: torch.nn.Module = criterion,
                prediction: Tensor = prediction,
                target: Tensor = target,
                condition: Tensor | None = condition,
            ) -> None:
                prediction.grad = None
                criterion(prediction, target, condition).backward()

            set_value_checks(False)
            run_losslab()  # fail here, not inside the timing loop
        except Exception as error:  # any reason a loss cannot run offline: report, go on
            row.note = f"skipped: {type(error).__name__}: {str(error).splitlines()[0][:90]}"
            continue
        reference = REFERENCES.get(spec)
        package = _package_reference(row.spec, criterion)

        def with_checks(enabled: bool, run: Callable[[], None] = run_losslab) -> Callable[[], None]:
            def wrapped() -> None:
                set_value_checks(enabled)
                run()

            return wrapped

        candidates: dict[str, Callable[[], None]] = {
            "losslab": with_checks(False),
            "checks": with_checks(True),
        }
        if reference is not None:
            candidates["reference"] = lambda f=reference, p=prediction, t=target: _step(f, p, t)
            with torch.no_grad():
                expected = float(reference(prediction, target))
                got = float(criterion(prediction, target, condition))
            if abs(expected - got) > 1e-4 * max(1.0, abs(expected)):
                row.note = f"value differs from reference: {got:.6g} vs {expected:.6g}"
        else:
            row.note = "no reference"
        if package is not None:
            row.package, package_function = package
            candidates["package"] = lambda f=package_function, p=prediction, t=target: _step(f, p, t)
            if row.package in FORWARD_ONLY_PACKAGES:  # also time losslab's forward pass alone

                def forward_only(c: torch.nn.Module = criterion, p: Tensor = prediction,
                                 t: Tensor = target, k: Tensor | None = condition) -> None:
                    set_value_checks(False)
                    with torch.no_grad():
                        c(p, t, k)

                candidates["forward"] = forward_only
            with torch.no_grad():
                expected = float(package_function(prediction, target))
                got = float(criterion(prediction, target, condition))
            if abs(expected - got) > 1e-4 * max(1.0, abs(expected)):
                row.note += f" value differs from {row.package}: {got:.6g} vs {expected:.6g}"
            elif row.note == "no reference":
                row.note = ""
        times = _time_round_robin(candidates, repeats, device, statistic)
        set_value_checks(False)
        if "forward" in times and times.get("package"):
            row.note = (f"{row.note} forward only: {times['forward']:.2f} ms, x pkg "
                        f"{times['forward'] / times['package']:.2f}").strip()
        row.losslab_ms, row.checks_ms = times["losslab"], times["checks"]
        row.reference_ms, row.package_ms = times.get("reference"), times.get("package")
        if device.type == "cuda":
            row.losslab_mib = _peak_mib(
                lambda p, t, c=criterion, k=condition: c(p, t, k), prediction, target
            )
            if reference is not None:
                row.reference_mib = _peak_mib(reference, prediction, target)
        del criterion, prediction, target
    set_value_checks(True)
    return rows


def _cell(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def format_table(rows: list[Row], device: torch.device) -> str:
    header = (
        f"{'loss':<28} {'batch':>16} {'losslab ms':>10} {'ref ms':>8} {'x ref':>6} "
        f"{'package':>14} {'pkg ms':>8} {'x pkg':>6} {'checks ms':>9} {'checks +%':>9}"
    )
    if device.type == "cuda":
        header += f" {'MiB':>7} {'ref MiB':>7}"
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio = row.losslab_ms / row.reference_ms if row.losslab_ms and row.reference_ms else None
        vs_package = row.losslab_ms / row.package_ms if row.losslab_ms and row.package_ms else None
        extra = 100 * (row.checks_ms / row.losslab_ms - 1) if row.losslab_ms and row.checks_ms else None
        line = (
            f"{row.spec:<28} {'x'.join(map(str, row.shape)):>16} {_cell(row.losslab_ms, '.2f'):>10} "
            f"{_cell(row.reference_ms, '.2f'):>8} {_cell(ratio, '.2f'):>6} "
            f"{row.package or '-':>14} {_cell(row.package_ms, '.2f'):>8} {_cell(vs_package, '.2f'):>6} "
            f"{_cell(row.checks_ms, '.2f'):>9} {_cell(extra, '+.0f'):>9}"
        )
        if device.type == "cuda":
            line += f" {_cell(row.losslab_mib, '.1f'):>7} {_cell(row.reference_mib, '.1f'):>7}"
        if row.note:
            line += f"  {row.note}"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per candidate")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--only", default="", help="comma-separated loss names to run (default all)")
    parser.add_argument(
        "--statistic", choices=("median", "min"), default="median",
        help="summary of the repeats; 'min' is steadier on a machine shared with other jobs",
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available here; use --device cpu.", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"losslab loss benchmark: forward+backward, {args.statistic} of {args.repeats}, device {name}, "
        f"{torch.get_num_threads()} CPU thread(s), torch {torch.__version__}"
    )
    print(
        format_table(
            benchmark(
                device,
                args.repeats,
                set(filter(None, args.only.split(","))),
                statistics.median if args.statistic == "median" else min,
            ),
            device,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
