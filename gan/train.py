"""Training one person's GAN on their aligned 64x64 crops: a VAE-GAN whose decoder is the DCGAN
generator (few-shot GANs need that anchor; see DESIGN.md), with DiffAugment on everything the
discriminator sees. Deterministic under a seed; checkpoints let an interrupted run resume.
"""

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from gan.augment import diff_augment
from gan.dcgan import DCGANConfig, Discriminator, Encoder, Generator, weights_init


@dataclass
class TrainConfig:
    steps: int = 240  # the enrollment default; see Settings.gan_steps
    batch_size: int = 32
    lr: float = 2e-4
    beta1: float = 0.5
    recon_weight: float = 10.0  # L1 between a real crop and its reconstruction
    kl_weight: float = 0.01
    loss: Literal["nonsat", "wgan-gp"] = "nonsat"
    gp_weight: float = 10.0  # WGAN-GP's gradient penalty
    mirror: bool = True  # add the mirror image of every crop
    seed: int = 0
    checkpoint_every: int = 100


@dataclass
class TrainedGAN:
    generator: Generator
    encoder: Encoder
    discriminator: Discriminator
    net: DCGANConfig
    config: TrainConfig
    steps_done: int
    curves: dict[str, list[float]] = field(default_factory=dict)


Progress = Callable[[int, int, dict[str, float]], None]  # (step, total, latest losses)


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(N, 64, 64, 3) uint8 RGB -> (N, 3, 64, 64) in [-1, 1], in torch's default float type."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
    return x.to(torch.get_default_dtype()) / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, 64, 64) in [-1, 1] -> (N, 64, 64, 3) uint8 RGB."""
    x = ((images.detach().clamp(-1, 1) + 1.0) * 127.5).round().byte()
    return x.permute(0, 2, 3, 1).cpu().numpy()


def _d_loss(
    cfg: TrainConfig, d: Discriminator, real: torch.Tensor, fakes: list[torch.Tensor]
) -> torch.Tensor:
    real_logits = d(real)
    fake_logits = [d(f) for f in fakes]
    if cfg.loss == "nonsat":
        return F.softplus(-real_logits).mean() + sum(
            F.softplus(f).mean() for f in fake_logits
        ) / len(fakes)
    loss = sum(f.mean() for f in fake_logits) / len(fakes) - real_logits.mean()
    return loss + cfg.gp_weight * _gradient_penalty(d, real, fakes[0])


def _gradient_penalty(d: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _g_adv(cfg: TrainConfig, d: Discriminator, fakes: list[torch.Tensor]) -> torch.Tensor:
    logits = [d(f) for f in fakes]
    if cfg.loss == "nonsat":
        return sum(F.softplus(-f).mean() for f in logits) / len(fakes)
    return -sum(f.mean() for f in logits) / len(fakes)


def train_person_gan(
    crops: np.ndarray,
    config: TrainConfig | None = None,
    net: DCGANConfig | None = None,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    checkpoint: Path | None = None,
) -> TrainedGAN:
    """Train on (N, 64, 64, 3) uint8 crops of one person. With `checkpoint`, state is saved every
    `checkpoint_every` steps and a run that finds one resumes from it."""
    cfg, net = config or TrainConfig(), net or DCGANConfig()
    device = torch.device(device)
    data = to_tensor(crops)
    if cfg.mirror:
        data = torch.cat([data, data.flip(3)])
    data = data.to(device)

    torch.manual_seed(cfg.seed)
    g, e, d = Generator(net).to(device), Encoder(net).to(device), Discriminator(net).to(device)
    for m in (g, e, d):
        m.apply(weights_init)
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_ge = torch.optim.Adam(
        [*g.parameters(), *e.parameters()], lr=cfg.lr, betas=(cfg.beta1, 0.999)
    )
    rng = torch.Generator().manual_seed(cfg.seed)  # batches, augmentation and latent noise
    curves: dict[str, list[float]] = {"d": [], "g_adv": [], "recon": [], "kl": []}
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        start = _load_checkpoint(checkpoint, g, e, d, opt_d, opt_ge, rng, curves)

    def noise(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=rng).to(device)

    for step in range(start, cfg.steps):
        real = data[torch.randint(len(data), (cfg.batch_size,), generator=rng)]
        # encode, reparameterise, decode; and decode from the prior
        mu, logvar = e(real)
        recon = g(mu + noise(*mu.shape) * torch.exp(0.5 * logvar))
        prior = g(noise(cfg.batch_size, net.nz))

        # (1) update D: real crops against reconstructions and prior samples, all augmented
        d.zero_grad(set_to_none=True)
        loss_d = _d_loss(
            cfg,
            d,
            diff_augment(real, rng),
            [diff_augment(recon.detach(), rng), diff_augment(prior.detach(), rng)],
        )
        loss_d.backward()
        opt_d.step()

        # (2) update G and E: fool D, reconstruct the crop, keep the latent near the prior
        opt_ge.zero_grad(set_to_none=True)
        adv = _g_adv(cfg, d, [diff_augment(recon, rng), diff_augment(prior, rng)])
        rec = F.l1_loss(recon, real)
        kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
        (adv + cfg.recon_weight * rec + cfg.kl_weight * kl).backward()
        opt_ge.step()

        # (3) log
        latest = {"d": loss_d.item(), "g_adv": adv.item(), "recon": rec.item(), "kl": kl.item()}
        for k, v in latest.items():
            curves[k].append(v)
        if progress is not None:
            progress(step + 1, cfg.steps, latest)
        if checkpoint is not None and (step + 1) % cfg.checkpoint_every == 0:
            _save_checkpoint(checkpoint, step + 1, g, e, d, opt_d, opt_ge, rng, curves)

    for m in (g, e, d):
        m.eval()
    return TrainedGAN(g, e, d, net, cfg, max(start, cfg.steps), curves)


def _save_checkpoint(
    path: Path, step: int, g, e, d, opt_d, opt_ge, rng: torch.Generator, curves
) -> None:
    state = {
        "step": step,
        "nets": [m.state_dict() for m in (g, e, d)],
        "optimizers": [opt_d.state_dict(), opt_ge.state_dict()],
        "rng": rng.get_state(),
        "torch_rng": torch.get_rng_state(),
        "curves": curves,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-save leaves the previous checkpoint whole


def _load_checkpoint(path: Path, g, e, d, opt_d, opt_ge, rng: torch.Generator, curves) -> int:
    state = torch.load(path, map_location="cpu", weights_only=False)
    for m, sd in zip((g, e, d), state["nets"], strict=True):
        m.load_state_dict(sd)
    opt_d.load_state_dict(state["optimizers"][0])
    opt_ge.load_state_dict(state["optimizers"][1])
    rng.set_state(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    curves.update({k: list(v) for k, v in state["curves"].items()})
    return int(state["step"])


NOISE_STD = 0.3  # latent noise added to an interpolation (a clip's samples; photos: a setting)


def latent_pairs(
    mu: torch.Tensor, n: int, rng: torch.Generator, neighbours: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """n index pairs (i, j) into the latents `mu` to interpolate between: j any latent, or (with
    `neighbours` = k > 0) one of i's k nearest other latents."""
    i = torch.randint(len(mu), (n,), generator=rng)
    if neighbours <= 0 or len(mu) < 2:
        return i, torch.randint(len(mu), (n,), generator=rng)
    k = min(neighbours, len(mu) - 1)
    nearest = torch.cdist(mu.float(), mu.float()).argsort(dim=1)[:, 1 : k + 1].cpu()
    return i, nearest[i, torch.randint(k, (n,), generator=rng)]


@torch.no_grad()
def interpolate(
    trained: TrainedGAN,
    crops: np.ndarray,
    n: int,
    noise_std: float = NOISE_STD,
    seed: int = 0,
    neighbours: int = 0,
) -> np.ndarray:
    """n samples decoded from interpolations between encoded real crops, plus a little noise:
    the poses between frames of a turning head. (n, 64, 64, 3) uint8."""
    device = next(trained.generator.parameters()).device
    mu, _ = trained.encoder(to_tensor(crops).to(device))
    return decode_between(trained.generator, mu, n, noise_std, seed, neighbours)


@torch.no_grad()
def decode_between(
    generator: Generator,
    mu: torch.Tensor,
    n: int,
    noise_std: float = NOISE_STD,
    seed: int = 0,
    neighbours: int = 0,
) -> np.ndarray:
    """n samples decoded from random interpolations between the latents `mu` (K, nz), plus
    noise. With `neighbours` = k > 0, each latent is paired only with one of its k nearest (a
    photo folder's faces differ in light and age as well as pose: the midpoint of two far ones
    is nobody). (n, 64, 64, 3) uint8."""
    device = next(generator.parameters()).device
    mu = mu.to(device)
    rng = torch.Generator().manual_seed(seed)
    i, j = latent_pairs(mu, n, rng, neighbours)
    alpha = torch.rand(n, 1, generator=rng).to(device)
    z = (
        (1 - alpha) * mu[i]
        + alpha * mu[j]
        + noise_std * torch.randn(n, mu.shape[1], generator=rng).to(device)
    )
    return to_uint8(generator(z))


@torch.no_grad()
def sample_prior(trained: TrainedGAN, n: int, seed: int = 0) -> np.ndarray:
    device = next(trained.generator.parameters()).device
    z = torch.randn(n, trained.net.nz, generator=torch.Generator().manual_seed(seed)).to(device)
    return to_uint8(trained.generator(z))


def sample_grid_png(samples: np.ndarray, per_row: int = 8) -> bytes:
    """PNG bytes of a grid of (N, 64, 64, 3) uint8 RGB samples."""
    grid = make_grid(torch.from_numpy(samples).permute(0, 3, 1, 2), nrow=per_row, padding=2)
    ok, png = cv2.imencode(".png", cv2.cvtColor(grid.permute(1, 2, 0).numpy(), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding of the sample grid failed")
    return png.tobytes()


def config_dict(trained: TrainedGAN) -> dict:
    return {
        "net": asdict(trained.net),
        "train": asdict(trained.config),
        "steps_done": trained.steps_done,
    }
