"""Personal DCGANs, personal discriminators and the general discriminator (issue 4; so far the
networks, augmentation and training; not yet identity checks, the verifier or the general
discriminator).

Imports nothing from enroll/, recognize/, db/ or api/.
"""

from gan.augment import diff_augment
from gan.dcgan import DCGANConfig, Discriminator, Encoder, Generator, fp16_bytes, weights_init
from gan.train import (
    TrainConfig,
    TrainedGAN,
    interpolate,
    sample_grid_png,
    sample_prior,
    train_person_gan,
)

__all__ = [
    "TrainConfig",
    "TrainedGAN",
    "interpolate",
    "sample_grid_png",
    "sample_prior",
    "train_person_gan",
    "DCGANConfig",
    "Discriminator",
    "Encoder",
    "Generator",
    "diff_augment",
    "fp16_bytes",
    "weights_init",
]
