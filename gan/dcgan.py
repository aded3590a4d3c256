"""The personal DCGAN's networks: a transposed-convolution generator, the convolutional encoder that
anchors it (VAE-GAN), and the discriminator that becomes the person's verifier. 64x64 RGB in [-1, 1].
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DCGANConfig:
    nz: int = 64  # latent size
    ngf: int = 32  # generator feature maps
    nef: int = 32  # encoder feature maps
    ndf: int = 24  # discriminator feature maps: 24 keeps it under 1 MB in fp16
    nc: int = 3  # image channels
    spectral_norm: bool = True  # on the discriminator's convolutions


def weights_init(m: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0."""
    name = m.__class__.__name__
    if "Conv" in name and hasattr(m, "weight"):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        ngf = cfg.ngf
        self.main = nn.Sequential(
            # input is Z, going into a convolution
            nn.ConvTranspose2d(cfg.nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 16 x 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # state size. (ngf) x 32 x 32
            nn.ConvTranspose2d(ngf, cfg.nc, 4, 2, 1, bias=False),
            nn.Tanh(),
            # state size. (nc) x 64 x 64
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.size(0), -1, 1, 1))


class Encoder(nn.Module):
    """Image -> (mu, logvar) of the latent: anchors the few-shot generator to the real frames."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        nef = cfg.nef
        self.main = nn.Sequential(
            # input is (nc) x 64 x 64
            nn.Conv2d(cfg.nc, nef, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (nef) x 32 x 32
            nn.Conv2d(nef, nef * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(nef * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (nef*2) x 16 x 16
            nn.Conv2d(nef * 2, nef * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(nef * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (nef*4) x 8 x 8
            nn.Conv2d(nef * 4, nef * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(nef * 8),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (nef*8) x 4 x 4
        )
        self.mu = nn.Conv2d(nef * 8, cfg.nz, 4, 1, 0)
        self.logvar = nn.Conv2d(nef * 8, cfg.nz, 4, 1, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.mu(h).flatten(1), self.logvar(h).flatten(1)


class SNConv2d(nn.Conv2d):
    """A convolution whose weight is divided by its largest singular value, estimated by one power
    iteration per training forward (Miyato et al., as torch.nn.utils.spectral_norm). Written out so
    that it also runs under torch.func.vmap with stacked parameters: the estimate `u` is a buffer
    updated with copy_, never through an `out=` argument."""

    def __init__(self, *args, eps: float = 1e-12, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps = eps
        u = torch.randn(self.weight.shape[0])
        self.register_buffer("u", u / u.norm().clamp_min(eps))

    def normalised_weight(self) -> torch.Tensor:
        w = self.weight.flatten(1)
        u = self.u
        if self.training:
            with torch.no_grad():
                v = F.normalize(w.t() @ u, dim=0, eps=self.eps)
                u_new = F.normalize(w @ v, dim=0, eps=self.eps)
                self.u.copy_(u_new)
            u = u_new
        v = F.normalize(w.t() @ u, dim=0, eps=self.eps).detach()
        sigma = u.detach() @ (w @ v)
        return self.weight / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalised_weight(), None, self.stride, self.padding)


class Discriminator(nn.Module):
    """Image -> one logit. Spectral normalisation (optional) instead of batch norm, so the same
    network can later score single frames as the person's verifier."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        ndf = cfg.ndf

        def conv(cin: int, cout: int, k: int = 4, s: int = 2, p: int = 1) -> nn.Module:
            kind = SNConv2d if cfg.spectral_norm else nn.Conv2d
            return kind(cin, cout, k, s, p, bias=False)

        self.main = nn.Sequential(
            # input is (nc) x 64 x 64
            conv(cfg.nc, ndf),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 32 x 32
            conv(ndf, ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 16 x 16
            conv(ndf * 2, ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*4) x 8 x 8
            conv(ndf * 4, ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*8) x 4 x 4
            conv(ndf * 8, 1, 4, 1, 0),
            # state size. 1 x 1 x 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()


def fp16_bytes(module: nn.Module) -> int:
    """What the module's parameters and buffers take stored in half precision."""
    return 2 * sum(t.numel() for t in list(module.parameters()) + list(module.buffers()))
