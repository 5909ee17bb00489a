"""compute_image_metrics: keys, unavailable reasons, errors, accumulation."""

from __future__ import annotations

import time

import pytest
import torch

from losslab.metrics import METRIC_KEYS, SAMPLE_KEYS, MetricAccumulator, compute_image_metrics


@pytest.fixture()
def empty_torch_home(tmp_path, monkeypatch):  # no cached weights: like an offline machine
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_all_keys_and_lpips_unavailable_without_weights(photo_batch, empty_torch_home) -> None:
    begin = time.perf_counter()
    result = compute_image_metrics(photo_batch * 0.9, photo_batch, encode_fn=lambda x: x)
    assert time.perf_counter() - begin < 10  # never waits for a download
    # psnr_plausible needs the plausible answers (plausible=...), which photos do not have, and
    # the sample rows a stochastic model's samples (samples=...)
    assert [key for key in result if key in METRIC_KEYS] == [
        key for key in METRIC_KEYS if key != "psnr_plausible" and key not in SAMPLE_KEYS]
    assert result["lpips"] is None
    assert "alexnet-owt-7be5be79.pth" in result["unavailable"]["lpips"]
    assert "4 of 5 scales" in result["notes"]["ms_ssim"] and "161 px" in result["notes"]["ms_ssim"]
    assert result["retrieval_top1"] == 1.0


def test_fid_kid_reported_unavailable_not_numbers(photo_batch, empty_torch_home) -> None:
    result = compute_image_metrics(photo_batch, photo_batch, lpips=False, fid=True, kid=True)
    assert result["fid"] is None and result["kid"] is None
    assert "torch-fidelity" in result["unavailable"]["fid"] or "Inception" in result["unavailable"]["fid"]


def test_corrupt_cached_weights_give_a_reason(photo_batch, empty_torch_home) -> None:
    checkpoints = empty_torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "alexnet-owt-7be5be79.pth").write_bytes(b"not a checkpoint")
    result = compute_image_metrics(photo_batch, photo_batch, metrics=["lpips"])
    assert result["lpips"] is None and "could not be built" in result["unavailable"]["lpips"]


def test_unknown_metric_and_mismatched_sizes() -> None:
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="Did you mean 'psnr'"):
        compute_image_metrics(x, x, metrics=["psnrr"])
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3, 16, 16\).*\(2, 3, 16, 17\)"):
        compute_image_metrics(x, torch.rand(2, 3, 16, 17))
    with pytest.raises(ValueError, match="3 channels"):
        compute_image_metrics(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16))


def test_accumulator_weights_batches_by_size(photo_batch) -> None:
    accumulator = MetricAccumulator(lpips=False)
    target = photo_batch * 0.8 + 0.1
    accumulator.update(target[:1] + 0.1, target[:1])  # err_red 0.1, one image
    accumulator.update(target[1:], target[1:])  # err_red 0, three images
    assert accumulator.compute()["err_red"] == pytest.approx(0.1 / 4, abs=1e-6)


def test_psnr_plausible_key_appears_with_the_plausible_answers(photo_batch) -> None:
    answers = torch.stack([photo_batch, 1.0 - photo_batch], dim=1)  # (N, 2, 3, H, W)
    result = compute_image_metrics(1.0 - photo_batch, photo_batch, metrics=["psnr",
                                   "psnr_plausible"], plausible=answers)
    assert result["psnr_plausible"] == float("inf")  # the output is the second answer exactly
    assert result["psnr"] < 20
    missing = compute_image_metrics(photo_batch, photo_batch, metrics=["psnr_plausible"])
    assert missing["psnr_plausible"] is None
    assert "plausible" in missing["unavailable"]["psnr_plausible"]


def test_accumulator_pools_psnr_over_batches_like_one_call(photo_batch) -> None:
    generator = torch.Generator().manual_seed(3)
    noisy = (photo_batch + 0.03 * torch.randn(photo_batch.shape, generator=generator)).clamp(0, 1)
    noisy[0] = photo_batch[0] + 0.2 * (0.5 - photo_batch[0])  # one much worse image
    accumulator = MetricAccumulator(lpips=False, metrics=["psnr"])
    accumulator.update(noisy[:1], photo_batch[:1])
    accumulator.update(noisy[1:], photo_batch[1:])
    whole = compute_image_metrics(noisy, photo_batch, metrics=["psnr"])["psnr"]
    assert accumulator.compute()["psnr"] == pytest.approx(whole, abs=1e-4)
    mean_of_batches = (compute_image_metrics(noisy[:1], photo_batch[:1], metrics=["psnr"])["psnr"]
                       + 3 * compute_image_metrics(noisy[1:], photo_batch[1:],
                                                   metrics=["psnr"])["psnr"]) / 4
    assert abs(mean_of_batches - whole) > 0.5  # the pooled value is not a mean of batch values
