"""Evaluate one trained run on its fixed validation images and write the results beside it.

:func:`evaluate_run` (also ``losslab evaluate RUN_DIR``) writes, inside the run directory::

    metrics.json                  {metric_key: float|null, "unavailable": {metric: reason},
                                   "notes": {...}, "per_image": {"psnr": [N values], ...},
                                   "per_hypothesis": {...} (K > 1 only)}
    metrics.csv                   one header row, one value row (same keys, nested ones left out)
    evaluation/predictions.pt     {"inputs", "outputs", "targets"} on the validation images
                                  (+ "plausible" (N, P, C, H, W) when the data knows them;
                                  + "samples" (M, S, C, H, W) and "sample_mean" (N, C, H, W)
                                  for stochastic runs, see below)
    evaluation/spectrum.json      {"frequency", "output", "target"}: radial luma power spectra
    evaluation/neighbours.json    autoencoders only: code nearest neighbours of each image

``psnr`` is pooled over the validation set (one PSNR of the set's mean squared error, outputs
clipped to ``[0, 1]``; :mod:`losslab.metrics.fidelity`), the same function that gives the
training log's ``val/psnr``; ``per_image["psnr"]`` holds each image's own PSNR for the spread
(``null`` for an exact image). ``psnr_plausible`` (PSNR to the nearest plausible answer,
:mod:`losslab.metrics.plausibility`) is there when the data knows each item's plausible answers.

Multi-hypothesis runs (outputs ``(N, K, C, H, W)``) are scored on the best hypothesis per image
(lowest MSE to the target, the "oracle" choice winner-takes-all training optimises;
``psnr_plausible`` on the hypothesis nearest to any plausible answer) and per hypothesis in
``per_hypothesis`` (``psnr``, ``psnr_plausible`` and ``nearest_counts``: how often hypothesis
``k`` is nearest to plausible answer ``p``); the predictions file keeps all ``K``. A model with a
score head (``hypotheses.scores``) adds ``score_mean`` (the head's mean probability of each
hypothesis over the validation images) and ``score_accuracy`` (fraction of images whose most
probable hypothesis is the one nearest to the target).

Stochastic runs (the evaluated model satisfies :func:`losslab.models.stochastic.is_stochastic`)
are evaluated on ``S`` samples per validation input (``samples=``, default
:data:`DEFAULT_SAMPLES` = 8; ``losslab evaluate RUN --samples S``), drawn with
:meth:`losslab.train.run.LoadedRun.sample` (input ``i`` seeded ``seed + i``, default seed 0), so
two evaluations give identical numbers. **Every image metric of the table (``psnr``,
``psnr_plausible``, ``ssim``, ..., and ``per_image``) is the single-sample score: computed on
sample 0 of each input's seeded draws, i.e. one sample per input**, what a user of the model
gets from one call; ``notes["all"]`` says so. The sample rows of the metric table
(:data:`losslab.metrics.SAMPLE_KEYS`: ``psnr_best_of_n``, ``psnr_plausible_best_of_n``,
``psnr_sample_mean``, ``sample_diversity``, ``mode_coverage``, ``plausible_hit_rate``,
``spread_skill``; definitions in :mod:`losslab.metrics.samples`) use all ``S``. ``metrics.json``
also holds ``"samples"``: ``{"count", "seed", "closeness", "stored", "spread", "skill",
"per_sample": {"psnr": [S], "psnr_plausible": [S]}}``, where ``per_sample[key][k]`` scores
sample ``k`` of every input (so a reader can check that sample 0 is not a lucky pick).
``predictions.pt`` keeps the samples of the first ``stored`` inputs (all of them unless they
exceed :data:`MAX_STORED_SAMPLE_BYTES`) and the mean of every input's samples.

:func:`evaluate_baseline` writes the same files for a task's untrained baseline (bicubic
upsampling, a copy of the last frame, the grey image), so it is a row like any trained run.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from losslab.core.atomic import atomic_path, write_text_atomic
from losslab.core.records import (
    CONFIG_FILE,
    EVALUATION_DIR,
    EXPERIMENT_FILE,
    METRICS_CSV,
    METRICS_FILE,
    NEIGHBOURS_FILE,
    PREDICTIONS_FILE,
    RUNS_DIR,
    SPECTRUM_FILE,
)
from losslab.losses.multi_hypothesis import best_hypothesis as best_hypothesis_index
from losslab.losses.multi_hypothesis import select_hypothesis
from losslab.metrics import (
    METRIC_KEYS,  # column order of metrics.json / metrics.csv: the one metric table's
    compute_image_metrics,
    per_image_psnr,
    per_image_psnr_plausible,
    plausible_per_hypothesis,
    psnr,
    psnr_plausible,
    spread_skill,
)
from losslab.metrics.codes import nearest_neighbours
from losslab.metrics.samples import CLOSENESS, check_samples, sample_mean
from losslab.metrics.sharpness import radial_bin_centres, radial_power_spectrum
from losslab.models.stochastic import is_stochastic
from losslab.train.run import baseline_validation, open_run, validation_plausible

#: How many neighbours ``neighbours.json`` lists per image.
NEIGHBOURS_K = 4
#: Samples drawn per validation input of a stochastic run (``losslab evaluate --samples``).
DEFAULT_SAMPLES = 8
#: Largest ``samples`` tensor kept in ``predictions.pt`` (float32 bytes); beyond it only the
#: first inputs' samples are kept (16 inputs x 8 samples of 48 px: 3.5 MiB; of 128 px: 25 MiB).
MAX_STORED_SAMPLE_BYTES = 64 * 2**20


class NotARunError(ValueError):
    """A directory that is not a losslab training run (no ``config.yaml``/checkpoints)."""


def check_run_dir(run_dir: str | Path) -> Path:
    """Return ``run_dir`` as a path if it holds a losslab run, else raise :class:`NotARunError`."""
    path = Path(run_dir)
    if not path.is_dir():
        raise NotARunError(f"run directory {str(path)!r} does not exist.")
    config = path / CONFIG_FILE
    checkpoints = path / "checkpoints"
    if not config.is_file():
        hint = ""
        if (path / RUNS_DIR).is_dir() or (path / EXPERIMENT_FILE).is_file():
            hint = (" It looks like a comparison directory: evaluate one of its runs "
                    f"({path / 'runs' / '<run_name>'}) or rebuild its report with losslab report.")
        raise NotARunError(
            f"{str(path)!r} is not a losslab run: it has no config.yaml (a run directory is made "
            f"by losslab train or losslab compare and holds config.yaml, checkpoints/, logs/).{hint}"
        )
    if not (checkpoints / "last.ckpt").is_file() and not (checkpoints / "best.ckpt").is_file():
        raise NotARunError(
            f"run {str(path)!r} has no checkpoint (checkpoints/last.ckpt): it has not trained yet. "
            "Train it first (losslab train --config "
            f"{config}) or re-run the comparison, which resumes it."
        )
    return path


def best_hypothesis(outputs: Tensor, targets: Tensor) -> Tensor:
    """Pick, per image, the hypothesis closest to the target (MSE).

    The same choice as the training log's validation (``losses.multi_hypothesis``'s
    ``best_hypothesis`` and ``select_hypothesis``), so ``val/psnr`` and ``psnr`` score the same
    images.

    Shape:
        - outputs: ``(N, K, C, H, W)``; targets: ``(N, C, H, W)``.
        - returns ``(N, C, H, W)``.
    """
    return select_hypothesis(outputs, best_hypothesis_index(outputs, targets))


def _json_value(value: Any) -> Any:
    if isinstance(value, Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _encoder(model: torch.nn.Module) -> Callable[[Tensor], Tensor] | None:
    """The model's ``encode`` (autoencoders, also inside a wrapper's ``.model``), or ``None``
    for models without codes."""
    candidates: list[Any] = [model, getattr(model, "model", None)]
    for holder in list(candidates):
        if holder is not None:
            candidates.append(getattr(holder, "model", None))
    for candidate in candidates:
        if candidate is not None and callable(getattr(candidate, "encode", None)):
            return candidate.encode
    return None


def _finite_or_none(values: Tensor) -> list[float | None]:
    return [float(v) if math.isfinite(float(v)) else None for v in values.tolist()]


def compute_metrics(outputs: Tensor, targets: Tensor,
                    encode_fn: Callable[[Tensor], Tensor] | None = None,
                    plausible: Tensor | None = None, samples: Tensor | None = None,
                    sample_seed: int = 0) -> dict[str, Any]:
    """Image metrics of outputs vs targets (best hypothesis when outputs are 5-D).

    Args:
        outputs: ``(N, 3, H, W)`` or ``(N, K, 3, H, W)`` in ``[0, 1]``.
        targets: ``(N, 3, H, W)`` in ``[0, 1]``.
        encode_fn: the autoencoder's ``encode``, for ``retrieval_top1``.
        plausible: ``(N, P, 3, H, W)``, every plausible answer of each image, for
            ``psnr_plausible``.
        samples: ``(N, S, 3, H, W)``, a stochastic model's samples; ``outputs`` must then be
            their sample 0 (the single-sample score, module docstring), and the sample rows
            and the ``"samples"`` block are added. ``sample_seed``: the seed they were drawn
            with (recorded).

    Returns ``{metric_key: float | None, "unavailable": {metric: reason}, "notes": {...},
    "per_image": {...}}`` (plus ``"per_hypothesis"`` for 5-D outputs); ``retrieval_top1`` needs
    ``encode_fn`` (autoencoders) and is ``None`` with a reason otherwise.
    """
    if samples is not None:
        check_samples(samples, targets)
        if outputs.dim() != 4 or not torch.equal(outputs, samples[:, 0]):
            raise ValueError("with samples, outputs must be sample 0 of each input "
                             "(samples[:, 0]): the single-sample score is defined on it.")
    scored = best_hypothesis(outputs, targets) if outputs.dim() == 5 else outputs
    raw = dict(compute_image_metrics(scored, targets, encode_fn=encode_fn, samples=samples,
                                     plausible=plausible if samples is not None else None))
    if plausible is not None:  # scored on its own hypothesis choice (nearest to any answer)
        raw["psnr_plausible"] = psnr_plausible(outputs, plausible)
    unavailable = dict(raw.pop("unavailable", {}) or {})
    notes = dict(raw.pop("notes", {}) or {})
    metrics: dict[str, Any] = {key: _json_value(value) for key, value in raw.items()}
    for key, value in raw.items():
        if value is not None and metrics[key] is None:
            unavailable.setdefault(key, f"not finite ({value}); e.g. PSNR of identical images")
    if encode_fn is None:
        metrics["retrieval_top1"] = None
        unavailable["retrieval_top1"] = ("only autoencoders (task reconstruct, one hypothesis) "
                                         "have codes to retrieve")
    if outputs.dim() == 5:
        notes["all"] = (f"best of {outputs.shape[1]} hypotheses per image (lowest MSE to the "
                        "target; psnr_plausible: the hypothesis nearest to any plausible answer)")
    if samples is not None:
        notes["all"] = single_sample_note(samples.shape[1], sample_seed)
    per_image: dict[str, Any] = {"psnr": _finite_or_none(per_image_psnr(scored, targets))}
    if plausible is not None:
        per_image["psnr_plausible"] = _finite_or_none(per_image_psnr_plausible(outputs, plausible))
    ordered = {key: metrics.get(key) for key in METRIC_KEYS if key in metrics}
    ordered.update({key: value for key, value in metrics.items() if key not in ordered})
    ordered["unavailable"] = unavailable
    ordered["notes"] = notes
    ordered["per_image"] = per_image
    if outputs.dim() == 5:
        per_hypothesis = plausible_per_hypothesis(outputs, targets, plausible)
        for key in ("psnr", "psnr_plausible"):
            if key in per_hypothesis:
                per_hypothesis[key] = [_json_value(v) for v in per_hypothesis[key]]
        ordered["per_hypothesis"] = per_hypothesis
    if samples is not None:
        ordered["samples"] = _samples_block(samples, targets, plausible, sample_seed)
    return ordered


def single_sample_note(count: int, seed: int) -> str:
    """The one wording of the single-sample definition (metrics.json notes, report, docs)."""
    return (f"stochastic model: one sample per input. Every image metric (psnr, "
            f"psnr_plausible, ssim, ...) is computed on sample 0 of each input's {count} seeded "
            f"draws (input i seeded {seed} + i); the sample metrics (psnr_best_of_n, "
            f"psnr_sample_mean, sample_diversity, mode_coverage, plausible_hit_rate, "
            f"spread_skill) use all {count}.")


def _samples_block(samples: Tensor, targets: Tensor, plausible: Tensor | None,
                   seed: int) -> dict[str, Any]:
    """The ``"samples"`` entry of ``metrics.json`` (module docstring)."""
    count = samples.shape[1]
    per_sample: dict[str, list[Any]] = {
        "psnr": [_json_value(psnr(samples[:, k], targets)) for k in range(count)]}
    if plausible is not None:
        per_sample["psnr_plausible"] = [_json_value(psnr_plausible(samples[:, k], plausible))
                                        for k in range(count)]
    block: dict[str, Any] = {"count": count, "seed": seed, "closeness": CLOSENESS,
                             "stored": stored_sample_inputs(samples), "per_sample": per_sample}
    if count >= 2:
        block.update({key: _json_value(value) for key, value
                      in spread_skill(samples, targets).items() if key != "ratio"})
    return block


def stored_sample_inputs(samples: Tensor) -> int:
    """How many inputs' samples ``predictions.pt`` keeps: all, unless the float32 tensor would
    exceed :data:`MAX_STORED_SAMPLE_BYTES` (then as many as fit, at least 1)."""
    per_input = samples[0].numel() * 4
    return max(1, min(samples.shape[0], MAX_STORED_SAMPLE_BYTES // per_input))


def score_summary(probabilities: Tensor, outputs: Tensor, targets: Tensor) -> dict[str, Any]:
    """A score head's ``{"score_mean": [K], "score_accuracy": float}``: each hypothesis's mean
    probability ``(N, K) -> (K,)``, and the fraction of images whose most probable hypothesis
    is the best one (lowest MSE to the target, as :func:`best_hypothesis`)."""
    if probabilities.shape != outputs.shape[:2]:
        raise ValueError(f"score probabilities must be (N, K) = {tuple(outputs.shape[:2])}; got "
                         f"{tuple(probabilities.shape)}.")
    chosen = probabilities.argmax(dim=1)
    return {"score_mean": probabilities.mean(dim=0).tolist(),
            "score_accuracy": float((chosen == best_hypothesis_index(outputs, targets))
                                    .float().mean())}


def spectrum_of(outputs: Tensor, targets: Tensor) -> dict[str, list[float]]:
    """Mean radial luma power spectra ``{"frequency", "output", "target"}`` (frequency in
    fractions of Nyquist; best hypothesis for 5-D outputs)."""
    scored = best_hypothesis(outputs, targets) if outputs.dim() == 5 else outputs
    output_power = radial_power_spectrum(scored.float()).mean(dim=0)
    target_power = radial_power_spectrum(targets.float()).mean(dim=0)
    bins = output_power.shape[0]
    return {
        "frequency": radial_bin_centres(bins).tolist(),
        "output": output_power.tolist(),
        "target": target_power.tolist(),
    }


def neighbours_of(encode: Callable[[Tensor], Tensor], images: Tensor, k: int = NEIGHBOURS_K
                  ) -> dict[str, Any]:
    """Nearest neighbours of every image's code among the other images' codes.

    Returns ``{"k", "indices": (N, k) nested lists, "distances": (N, k)}``; indices point into
    the validation images of ``evaluation/predictions.pt``.
    """
    with torch.no_grad():
        codes = encode(images)
    k = max(1, min(k, images.shape[0] - 1))
    indices, distances = nearest_neighbours(codes, k)
    return {"k": k, "indices": indices.tolist(), "distances": distances.float().tolist()}


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` via a temporary file and a rename (readers never see half a file)."""
    write_text_atomic(path, json.dumps(payload, indent=2, default=_json_value) + "\n")


def write_metrics_csv(path: Path, rows: Mapping[str, Mapping[str, Any]],
                      first_columns: tuple[str, ...] = ("run",)) -> None:
    """One CSV row per key of ``rows``; columns: ``first_columns`` then the metric keys.

    Nested values (``unavailable``) are left out; ``None`` becomes an empty cell.
    """
    keys: list[str] = [key for key in METRIC_KEYS
                       if any(key in row for row in rows.values())]
    for row in rows.values():
        for key, value in row.items():
            if key not in keys and key not in first_columns and not isinstance(value, Mapping):
                keys.append(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*first_columns, *keys])
        for label, row in rows.items():
            leading = [label, *(row.get(column, "") for column in first_columns[1:])]
            values = [row.get(key) for key in keys]
            writer.writerow(leading + ["" if value is None else value for value in values])


def check_sample_count(samples: Any) -> int:
    """``samples`` as a whole number >= 1, else a one-line ``ValueError`` naming the fix."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a whole number >= 1 (draws per validation input of a "
                         f"stochastic run; default {DEFAULT_SAMPLES}); got {samples!r}.")
    return samples


def evaluate_run(run_dir: str | Path, samples: int = DEFAULT_SAMPLES, seed: int = 0
                 ) -> dict[str, Any]:
    """Evaluate a trained run on its fixed validation images; write the files listed above.

    Scores ``checkpoints/last.ckpt`` (the model after its full budget), not ``best.ckpt``; the
    autoencoder codes (``retrieval_top1``, ``neighbours.json``) come from the same model. Only the
    model and the validation set are built (:func:`losslab.train.open_run`).

    Args:
        run_dir: a run directory made by ``losslab train`` / ``losslab compare``.
        samples: draws per validation input when the model is stochastic (ignored otherwise).
        seed: the seed of those draws (input ``i`` is drawn with ``seed + i``).

    Returns:
        the metrics dict written to ``metrics.json``.

    Raises:
        NotARunError: ``run_dir`` is not a losslab run, or has no checkpoint yet.
        ValueError: ``samples`` is not a whole number >= 1.
    """
    check_sample_count(samples)
    path = check_run_dir(run_dir)
    # The model after its full step budget: best.ckpt (lowest val/loss) is no fair pick when the
    # loss has an adversarial term, whose generator loss is 0 while gated off (start) and grows
    # as D learns, so "best" would be a warm-up checkpoint. One read of the run: its model (not
    # the training module: no loss networks, no discriminators) and its validation set once.
    run = open_run(path, checkpoint="last")
    encode = _encoder(run.model) if run.config.task == "reconstruct" else None
    if is_stochastic(run.model) and not callable(getattr(run.model, "probabilities", None)):
        inputs, drawn, targets = run.sample(samples, seed=seed)
        return write_evaluation(path, inputs, drawn[:, 0], targets, run.plausible(), encode,
                                samples=drawn, sample_seed=seed)
    # Hypotheses (a score head included: it is scored as K hypotheses, with the head's
    # probabilities per hypothesis) and deterministic models.
    inputs, outputs, targets = run.predict()
    probabilities = None
    if callable(getattr(run.model, "probabilities", None)):  # a score head (hypotheses.scores)
        with torch.no_grad():
            probabilities = torch.cat([run.model.probabilities(chunk)
                                       for chunk in inputs.split(16)])
    return write_evaluation(path, inputs, outputs, targets, run.plausible(), encode,
                            score_probabilities=probabilities)


def write_evaluation(path: Path, inputs: Tensor, outputs: Tensor, targets: Tensor,
                     plausible: Tensor | None = None,
                     encode: Callable[[Tensor], Tensor] | None = None,
                     samples: Tensor | None = None, sample_seed: int = 0, *,
                     score_probabilities: Tensor | None = None) -> dict[str, Any]:
    """Score ``outputs`` against ``targets`` and write the files listed in the module docstring
    into ``path`` (a run directory, or a baseline's directory); returns the metrics.

    Shapes: inputs as the model takes them, outputs ``(N, 3, H, W)`` or ``(N, K, 3, H, W)``,
    targets ``(N, 3, H, W)``, plausible ``(N, P, 3, H, W)``; all in ``[0, 1]``. A stochastic
    run passes its ``samples`` ``(N, S, 3, H, W)`` and ``outputs = samples[:, 0]``;
    ``score_probabilities`` ``(N, K)``, a score head's probabilities (5-D outputs only).
    """
    inputs, outputs, targets = (t.detach().float().cpu() for t in (inputs, outputs, targets))
    if plausible is not None:
        plausible = plausible.detach().float().cpu()
    evaluation = path / EVALUATION_DIR
    evaluation.mkdir(parents=True, exist_ok=True)
    saved = {"inputs": inputs, "outputs": outputs, "targets": targets}
    if plausible is not None:
        saved["plausible"] = plausible
    if samples is not None:
        samples = samples.detach().float().cpu()
        # outputs is sample 0, a view into every sample: saved alone it would carry all of them
        saved["outputs"] = outputs.clone()
        saved["samples"] = samples[: stored_sample_inputs(samples)].clone()
        saved["sample_mean"] = sample_mean(samples)
    with atomic_path(evaluation / PREDICTIONS_FILE) as temporary:
        torch.save(saved, temporary)

    metrics = compute_metrics(outputs, targets, encode, plausible, samples, sample_seed)
    if score_probabilities is not None and "per_hypothesis" in metrics:
        metrics["per_hypothesis"] |= score_summary(score_probabilities.float().cpu(), outputs,
                                                   targets)
    if encode is not None:
        write_json_atomic(evaluation / NEIGHBOURS_FILE, neighbours_of(encode, targets))
    write_json_atomic(evaluation / SPECTRUM_FILE, spectrum_of(outputs, targets))
    write_json_atomic(path / METRICS_FILE, metrics)
    write_metrics_csv(path / METRICS_CSV, {path.name: metrics})
    return metrics


def evaluate_baseline(config: Any, out_dir: str | Path) -> dict[str, Any] | None:
    """Evaluate the task's untrained baseline on a run config's validation items.

    Writes ``metrics.json``, ``metrics.csv`` and ``evaluation/`` (as :func:`evaluate_run` does)
    into ``out_dir``; returns the metrics, or ``None`` when the task has no baseline
    (:meth:`~losslab.train.tasks.Task.baseline`).

    Args:
        config: the :class:`~losslab.train.TrainConfig` whose data, task and validation items
            the baseline uses (any run of the comparison: they share them).
        out_dir: where to write.
    """
    result = baseline_validation(config)
    if result is None:
        return None
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    return write_evaluation(path, *result, validation_plausible(config))
