"""LatentModel, PosteriorEncoder and the KL helpers (losslab.models.latent)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from losslab.models import UNet
from losslab.models.latent import (
    FiLMBlock,
    LatentModel,
    PosteriorEncoder,
    gaussian_kl,
    kl_with_free_bits,
    reparameterise,
)
from losslab.models.stochastic import draw_samples, is_stochastic


def _broadcast(dim: int = 4) -> LatentModel:
    torch.manual_seed(0)
    return LatentModel(UNet(3 + dim, 3, width=4, depth=2, output="linear"), dim, in_channels=3)


def _film(dim: int = 4) -> LatentModel:
    torch.manual_seed(0)
    model = LatentModel(UNet(3, 3, width=4, depth=2, output="linear"), dim, in_channels=3,
                        injection="film")
    for block in model.network.modules():  # FiLM starts at identity: give it an effect to test
        if isinstance(block, FiLMBlock):
            nn.init.normal_(block.modulation.weight, std=0.5)
    return model


@pytest.mark.parametrize("build", [_broadcast, _film], ids=["broadcast", "film"])
def test_sample_shape_and_contract(build) -> None:
    model = build()
    inputs = torch.rand(2, 3, 16, 16)
    assert is_stochastic(model)
    assert model.sample(inputs, 5).shape == (2, 5, 3, 16, 16)
    assert model(inputs).shape == (2, 3, 16, 16)
    assert draw_samples(model, inputs, 3, seed=1).shape == (2, 3, 3, 16, 16)


@pytest.mark.parametrize("build", [_broadcast, _film], ids=["broadcast", "film"])
def test_sampling_is_reproducible_with_a_generator_and_z_changes_the_output(build) -> None:
    model = build()
    inputs = torch.rand(2, 3, 16, 16)
    a = draw_samples(model, inputs, 4, seed=7)
    torch.manual_seed(123)  # the global generator does not matter
    b = draw_samples(model, inputs, 4, seed=7)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    c = draw_samples(model, inputs, 4, seed=8)
    assert not torch.equal(a, c)
    # within one input, different z give different outputs
    assert (a[:, 0] - a[:, 1]).abs().amax() > 1e-4
    z = torch.zeros(2, model.dim)
    torch.testing.assert_close(model(inputs, z), model(inputs, z))
    assert (model(inputs, z) - model(inputs, z + 1.0)).abs().amax() > 1e-4


def test_sample_uses_one_draw_per_output_in_order() -> None:
    """Draw j of input i decodes row i * count + j of one (N * count, dim) normal draw."""
    model = _broadcast()
    inputs = torch.rand(2, 3, 16, 16)
    generator = torch.Generator().manual_seed(3)
    samples = model.sample(inputs, 3, generator=generator)
    z = torch.randn(6, model.dim, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(samples[1, 2], model(inputs[1:2], z[5:6])[0])


def test_film_starts_as_the_plain_network_and_copies_keep_their_own_state() -> None:
    torch.manual_seed(0)
    plain = UNet(3, 3, width=4, depth=2)
    model = LatentModel(copy.deepcopy(plain), 4, in_channels=3, injection="film")
    assert model.film_layers == ["inc", "down.0", "down.1"]
    inputs = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(model(inputs), plain(inputs))  # gamma = beta = 0 at init
    twin = copy.deepcopy(model)  # the EMA copy: its blocks must not read the original's z
    for block in twin.network.modules():
        if isinstance(block, FiLMBlock):
            nn.init.normal_(block.modulation.weight)
    z = torch.randn(2, 4)
    assert (twin(inputs, z) - model(inputs, z)).abs().amax() > 1e-4
    torch.testing.assert_close(model(inputs, z), plain(inputs))


def test_bad_arguments_raise_one_line_errors() -> None:
    with pytest.raises(ValueError, match="injection must be one of"):
        LatentModel(UNet(3, 3, width=4, depth=2), 4, in_channels=3, injection="add")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs film_layers"):
        LatentModel(nn.Conv2d(3, 3, 1), 4, in_channels=3, injection="film")
    with pytest.raises(ValueError, match="is not a submodule"):
        LatentModel(UNet(3, 3, width=4, depth=2), 4, 3, injection="film", film_layers=["nope"])
    with pytest.raises(ValueError, match="film_layers applies to injection 'film' only"):
        LatentModel(UNet(7, 3, width=4, depth=2), 4, 3, film_layers=["inc"])
    model = _broadcast()
    with pytest.raises(ValueError, match=r"z must be \(2, 4\)"):
        model(torch.rand(2, 3, 16, 16), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"input must be \(N, 3, H, W\)"):
        model(torch.rand(2, 4, 16, 16))
    with pytest.raises(ValueError, match="count must be >= 1"):
        model.sample(torch.rand(1, 3, 16, 16), 0)


def test_gaussian_kl_matches_the_closed_form_and_torch_distributions() -> None:
    torch.manual_seed(0)
    mean, log_variance = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mean, (0.5 * log_variance).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = torch.distributions.kl_divergence(q, p).mean(dim=0)
    torch.testing.assert_close(gaussian_kl(mean, log_variance), expected)
    # one hand-computed value: mean 1, variance e -> 0.5 * (1 + e - 1 - 1)
    value = gaussian_kl(torch.ones(1, 1), torch.ones(1, 1))
    assert float(value) == pytest.approx(0.5 * (math.e - 1.0))
    assert float(gaussian_kl(torch.zeros(4, 2), torch.zeros(4, 2)).sum()) == 0.0  # q = prior


def test_free_bits_charge_at_least_the_floor_and_cut_the_gradient_below_it() -> None:
    kl = torch.tensor([0.1, 2.0], requires_grad=True)
    total = kl_with_free_bits(kl, 0.5)
    assert float(total.detach()) == pytest.approx(2.5)
    total.backward()
    assert kl.grad.tolist() == [0.0, 1.0]
    assert float(kl_with_free_bits(kl.detach(), 0.0)) == pytest.approx(2.1)
    with pytest.raises(ValueError, match="free_bits must be >= 0"):
        kl_with_free_bits(kl, -1.0)


def test_reparameterise_has_the_posterior_statistics_and_gradients() -> None:
    mean = torch.full((20000, 2), 1.5, requires_grad=True)
    log_variance = torch.full((20000, 2), math.log(0.25), requires_grad=True)
    z = reparameterise(mean, log_variance, torch.Generator().manual_seed(0))
    values = z.detach()
    assert float(values.mean()) == pytest.approx(1.5, abs=0.02)
    assert float(values.std()) == pytest.approx(0.5, abs=0.02)
    z.sum().backward()
    assert mean.grad is not None and log_variance.grad is not None


def test_posterior_encoder_starts_at_the_prior_and_reads_both_inputs() -> None:
    torch.manual_seed(0)
    encoder = PosteriorEncoder(3, 3, dim=4, width=4, levels=3)
    inputs, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        mean, log_variance = encoder(inputs, target)
    assert mean.shape == log_variance.shape == (2, 4)
    assert float(mean.abs().max()) == 0.0 and float(log_variance.abs().max()) == 0.0
    nn.init.normal_(encoder.head.weight)
    a, _ = encoder(inputs, target)
    b, _ = encoder(inputs, target.flip(-1))
    assert (a - b).abs().amax() > 1e-4  # the target moves z
    small, _ = encoder(torch.rand(2, 3, 8, 8), target)  # a low-resolution input is resized
    assert small.shape == (2, 4)


def test_film_defaults_for_the_super_resolution_net() -> None:
    from losslab.models import SuperResolutionNet

    torch.manual_seed(0)
    model = LatentModel(SuperResolutionNet(scale=2, width=8, blocks=2), 4, in_channels=3,
                        injection="film")
    assert model.film_layers == ["head", "body.0", "body.1"]
    assert model.sample(torch.rand(1, 3, 8, 8), 2).shape == (1, 2, 3, 16, 16)
