"""Differentiable augmentation (DiffAugment): the same random colour, translation and cutout applied
to real and generated batches alike, so a discriminator trained on 50-300 crops cannot memorise them."""

import torch
import torch.nn.functional as F


def diff_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Colour (brightness, saturation, contrast), translation up to 1/8 of the side, and a cutout
    of half the side, each drawn per sample; gradients flow through all of it."""
    return cutout(translation(colour(x, generator), generator), generator)


def _rand(x: torch.Tensor, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    return torch.rand(x.size(0), *shape, generator=generator, device="cpu").to(x.device, x.dtype)


def colour(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    x = x + (_rand(x, generator, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, generator, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(x, generator, 1, 1, 1) + 0.5) + mean


def translation(
    x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.125
) -> torch.Tensor:
    n, _, h, w = x.shape
    shift = (_rand(x, generator, 2) * 2 - 1) * ratio * 2  # in grid units, where the side is 2
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, [n, 3, h, w], align_corners=False)
    return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


def cutout(
    x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.5
) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio), int(w * ratio)
    top = (_rand(x, generator) * (h - ch + 1)).long().view(n, 1, 1)
    left = (_rand(x, generator) * (w - cw + 1)).long().view(n, 1, 1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)
