"""The one metric table: every row complete, computed by compute_image_metrics in table order,
names looked up through the Registry, sizes and reasons from the rows."""

from __future__ import annotations

import math

import pytest
import torch

from losslab.core.registry import Registry
from losslab.metrics import (
    DISTRIBUTION_KEYS,
    METRIC_KEYS,
    METRIC_TABLE,
    METRICS,
    SAMPLE_KEYS,
    available_metrics,
    compute_image_metrics,
    metric_spec,
)
from losslab.metrics.color import COLOR_KEYS
from losslab.metrics.table import MetricInputs


def test_every_row_is_complete_and_the_keys_follow_the_table() -> None:
    assert isinstance(METRICS, Registry)
    assert [spec.name for spec in METRIC_TABLE] == [*METRIC_KEYS, *DISTRIBUTION_KEYS]
    assert available_metrics() == [*METRIC_KEYS, *DISTRIBUTION_KEYS]
    assert METRIC_KEYS[:5] == ("psnr", "psnr_plausible", "ssim", "ms_ssim", "lpips")
    assert DISTRIBUTION_KEYS == ("fid", "kid")
    for spec in METRIC_TABLE:
        assert callable(spec.function) and spec.label
        assert spec.direction in ("max", "min", "one", "none")
        assert (spec.direction == "one") == (spec.best_value == 1.0)
    assert {spec.name for spec in METRIC_TABLE if spec.direction == "one"} == {
        "hf_ratio", "grad_ratio", "chroma_ratio", "spread_skill"}
    # more diversity is not better (noise is diverse): a description without a best value
    assert {spec.name for spec in METRIC_TABLE if spec.direction == "none"} == {"sample_diversity"}
    assert metric_spec("lpips").higher_is_better is False
    assert metric_spec("ssim").min_size == 11
    assert set(COLOR_KEYS) <= set(METRIC_KEYS)


def test_unknown_names_get_the_registry_message() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'ssmi'\. Did you mean 'ssim'"):
        metric_spec("ssmi")
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"Known metrics: .*retrieval_top1"):
        compute_image_metrics(x, x, metrics=["nope"])


def test_results_come_in_table_order_with_each_rows_value(photo_batch: torch.Tensor) -> None:
    output = (photo_batch * 0.9 + 0.05).clamp(0, 1)
    result = compute_image_metrics(output, photo_batch, lpips=False)
    keys = [key for key in result if key not in ("unavailable", "notes")]
    assert keys == [key for key in METRIC_KEYS if key not in ("psnr_plausible", "lpips",
                                                              "retrieval_top1", *SAMPLE_KEYS)]
    for key in keys:  # the table's function, called directly, gives the same value
        spec = metric_spec(key)
        assert result[key] == pytest.approx(spec.function(MetricInputs(output, photo_batch)))
    assert result["err_red"] > 0 and math.isfinite(result["psnr"])


def test_minimum_sizes_make_a_metric_unavailable_with_its_reason() -> None:
    x = torch.rand(2, 3, 8, 8)
    result = compute_image_metrics(x, x.flip(-1), metrics=["psnr", "ssim", "ms_ssim"])
    assert math.isfinite(result["psnr"])
    assert result["ssim"] is None and result["ms_ssim"] is None
    assert result["unavailable"]["ssim"] == "ssim needs images of at least 11x11 px; got 8x8."
    assert "11x11" in result["unavailable"]["ms_ssim"]


def test_explicitly_asked_metrics_without_their_inputs_say_why(photo_batch: torch.Tensor) -> None:
    result = compute_image_metrics(photo_batch[:1], photo_batch[:1],
                                   metrics=["retrieval_top1", "psnr_plausible"])
    assert result["retrieval_top1"] is None and "encoder" in result["unavailable"]["retrieval_top1"]
    assert "plausible" in result["unavailable"]["psnr_plausible"]
    one = compute_image_metrics(photo_batch[:1], photo_batch[:1], metrics=["retrieval_top1"],
                                encode_fn=lambda images: images)
    assert "at least 2 images" in one["unavailable"]["retrieval_top1"]
