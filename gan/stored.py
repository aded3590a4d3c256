"""A person's generator as the database keeps it: the transposed-convolution generator in fp16 and
the latents of their encoded enrollment crops, enough to synthesize new samples of them later (as
negatives for other persons' discriminators and the general discriminator) without keeping the
encoder or the crops themselves."""

import io
from dataclasses import asdict

import numpy as np
import torch

from gan.dcgan import DCGANConfig, Generator
from gan.train import NOISE_STD, TrainedGAN, decode_between, to_tensor, to_uint8

GENERATOR_FORMAT = "facegate-generator-v1"
DISCRIMINATOR_FORMAT = "facegate-calibrated-discriminator-v1"


@torch.no_grad()
def generator_to_bytes(
    trained: TrainedGAN, crops: np.ndarray, neighbours: int = 0, noise_std: float = NOISE_STD
) -> bytes:
    """fp16 generator weights, the architecture, the latent mean of every crop and how samples
    pair them and how much latent noise they add (`neighbours`, `noise_std`: gan/train.py
    decode_between; absent in older artifacts: 0 and NOISE_STD)."""
    device = next(trained.encoder.parameters()).device
    mu, _ = trained.encoder(to_tensor(crops).to(device))
    state = {k: v.detach().half().cpu() for k, v in trained.generator.state_dict().items()}
    buffer = io.BytesIO()
    saved = {"net": asdict(trained.net), "state": state, "latents": mu.half().cpu()}
    torch.save(saved | {"neighbours": int(neighbours), "noise_std": float(noise_std)}, buffer)
    return buffer.getvalue()


class StoredGenerator:
    def __init__(
        self,
        generator: Generator,
        latents: torch.Tensor,
        neighbours: int = 0,
        noise_std: float = NOISE_STD,
    ):
        self.generator = generator.eval()
        self.latents = latents
        self.neighbours = neighbours
        self.noise_std = noise_std

    @classmethod
    def from_bytes(cls, data: bytes, device: torch.device | str = "cpu") -> "StoredGenerator":
        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        generator = Generator(DCGANConfig(**saved["net"]))
        generator.load_state_dict({k: v.float() for k, v in saved["state"].items()})
        latents = saved["latents"].float().to(device)
        return cls(
            generator.to(device),
            latents,
            int(saved.get("neighbours", 0)),
            float(saved.get("noise_std", NOISE_STD)),
        )

    def samples(self, n: int, seed: int = 0) -> np.ndarray:
        """n new samples between the person's enrollment poses. (n, 64, 64, 3) uint8."""
        return decode_between(
            self.generator,
            self.latents,
            n,
            noise_std=self.noise_std,
            seed=seed,
            neighbours=self.neighbours,
        )

    @torch.no_grad()
    def prior(self, n: int, seed: int = 0) -> np.ndarray:
        """n samples from the latent prior: less like the person, still the generator's look."""
        z = torch.randn(n, self.latents.shape[1], generator=torch.Generator().manual_seed(seed))
        return to_uint8(self.generator(z.to(self.latents.device)))
