"""Personal DCGANs, personal discriminators and the general discriminator (issue 4): the networks,
augmentation, single and batched training (train.py, batched.py), the calibrated personal verifier
(verifier.py) and the general discriminator with presentation-attack simulations (general.py).

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
