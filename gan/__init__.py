"""Personal DCGANs, personal discriminators and the general discriminator (issue 4; so far the
networks and the augmentation, not yet training).

Imports nothing from enroll/, recognize/, db/ or api/.
"""

from gan.augment import diff_augment
from gan.dcgan import DCGANConfig, Discriminator, Encoder, Generator, fp16_bytes, weights_init

__all__ = [
    "DCGANConfig",
    "Discriminator",
    "Encoder",
    "Generator",
    "diff_augment",
    "fp16_bytes",
    "weights_init",
]
