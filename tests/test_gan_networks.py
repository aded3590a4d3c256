"""The personal DCGAN's networks and augmentation (issue 4's core; training comes later)."""

import torch
from torch import nn

from gan import (
    DCGANConfig,
    Discriminator,
    Encoder,
    Generator,
    diff_augment,
    fp16_bytes,
    weights_init,
)
from gan.augment import cutout, translation
from gan.dcgan import SNConv2d


def build(cfg: DCGANConfig, seed: int = 0) -> tuple[Generator, Encoder, Discriminator]:
    torch.manual_seed(seed)
    nets = Generator(cfg), Encoder(cfg), Discriminator(cfg)
    for net in nets:
        net.apply(weights_init)
    return nets


def test_the_networks_map_latents_to_64px_faces_and_back():
    cfg = DCGANConfig()
    g, e, d = build(cfg)
    images = g(torch.randn(6, cfg.nz))
    assert images.shape == (6, 3, 64, 64)
    assert images.min() >= -1 and images.max() <= 1
    mu, logvar = e(images)
    assert mu.shape == logvar.shape == (6, cfg.nz)
    assert d(images).shape == (6,)


def test_the_generator_is_built_from_transposed_convolutions():
    g = Generator(DCGANConfig())
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs) == 5 and all(isinstance(m, nn.ConvTranspose2d) for m in convs)


def test_the_personal_discriminator_fits_one_megabyte_in_fp16():
    d = Discriminator(DCGANConfig())
    assert fp16_bytes(d) <= 1 << 20
    # a shortlist of 32 persons' discriminators is then at most 32 MB on the device
    assert 32 * fp16_bytes(d) <= 32 << 20


def test_the_networks_are_reproducible_under_a_seed():
    cfg = DCGANConfig()
    z = torch.randn(4, cfg.nz, generator=torch.Generator().manual_seed(1))
    first, second = build(cfg, seed=7)[0], build(cfg, seed=7)[0]
    assert torch.equal(first(z), second(z))
    assert not torch.equal(first(z), build(cfg, seed=8)[0](z))


def test_spectral_norm_keeps_each_discriminator_layer_near_unit_gain():
    d = Discriminator(DCGANConfig(spectral_norm=True))
    d.train()
    for _ in range(30):  # the power iteration converges over forward passes
        d(torch.randn(4, 3, 64, 64))
    sn = [m for m in d.modules() if isinstance(m, SNConv2d)]
    assert len(sn) == 5
    for m in sn:
        w = m.normalised_weight().detach().flatten(1)
        assert 0.9 < float(torch.linalg.matrix_norm(w, ord=2)) < 1.1
        # the raw weight is not already unit-gain: the normalisation does the work
        raw = float(torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2))
        assert not 0.9 < raw < 1.1
    plain = Discriminator(DCGANConfig(spectral_norm=False))
    assert not any(isinstance(m, SNConv2d) for m in plain.modules())


def test_diff_augment_is_random_per_sample_reproducible_and_differentiable():
    x = torch.rand(8, 3, 64, 64) * 2 - 1
    a = diff_augment(x, torch.Generator().manual_seed(3))
    b = diff_augment(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape
    same = diff_augment(x[:1].repeat(8, 1, 1, 1), torch.Generator().manual_seed(4))
    assert all(not torch.equal(same[0], same[i]) for i in range(1, 8))  # drawn per sample
    x.requires_grad_(True)
    diff_augment(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_cutout_blanks_a_square_of_half_the_side():
    out = cutout(torch.ones(4, 3, 64, 64), torch.Generator().manual_seed(0))
    zeros = (out == 0).sum(dim=[1, 2, 3])
    assert torch.equal(zeros, torch.full((4,), 3 * 32 * 32))


def test_translation_shifts_by_at_most_an_eighth_of_the_side():
    out = translation(torch.ones(16, 3, 64, 64), torch.Generator().manual_seed(0))
    blank_columns = (out[:, 0].abs().sum(dim=1) < 1e-6).sum(dim=1)
    blank_rows = (out[:, 0].abs().sum(dim=2) < 1e-6).sum(dim=1)
    assert int(blank_columns.max()) <= 8 and int(blank_rows.max()) <= 8
    assert int((blank_columns + blank_rows).max()) > 0
