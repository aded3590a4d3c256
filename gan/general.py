"""The general discriminator: one CNN for everyone, G(x) = P(x is a genuine camera capture of a
live face), run before any personal discriminator.

Positives are the real crops of all enrolled people. Negatives are samples from all personal
generators and presentation-attack simulations made from the real crops: a re-photographed print
(gamma, faded colour, compressed contrast, paper grain), a screen (moire interference and the
sub-pixel grid), blur, heavy JPEG, and flat lighting. The simulations are approximations of real
attacks; benchmarks/personal_gan.py also measures a real phone-screen replay.

Training starts from scratch or, after new enrollments, goes on from the current model for a
shorter run (incremental retraining, a background job in the product).
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch

from facegate.metrics import roc_auc
from gan.augment import translation
from gan.dcgan import DCGANConfig, weights_init
from gan.train import to_tensor
from gan.verifier import CalibratedDiscriminator, calibrate, fit_discriminator

ATTACKS = ("print", "screen", "blur", "jpeg", "flat_light")


@dataclass
class GeneralConfig:
    steps: int = 400  # training from scratch
    incremental_steps: int = 150  # going on from the current model after new enrollments
    batch_size: int = 64  # half real crops, half negatives
    lr: float = 2e-4
    generated_share: float = 0.5  # of the negatives in a batch; the rest are attack simulations
    holdout_every: int = 4  # every 4th real crop and generated sample is held out
    seed: int = 0


@dataclass
class GeneralReport:
    auc_generated: float  # held-out real crops against held-out generated samples
    auc_attacks: dict[str, float]  # ... against simulated attacks on held-out crops, per kind
    auc: float  # ... against all held-out negatives
    eer: float
    platt_a: float
    platt_b: float
    held_out_real: int
    held_out_generated: int
    train_real: int
    train_generated: int
    steps: int
    incremental: bool
    curve: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        out = asdict(self)
        out.pop("curve")
        out["auc_attacks"] = {k: round(v, 4) for k, v in self.auc_attacks.items()}
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def _print(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = face.astype(np.float32) / 255
    x = x ** rng.uniform(0.6, 0.85) if rng.random() < 0.5 else x ** rng.uniform(1.2, 1.6)
    grey = x.mean(2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.4, 0.8)  # faded inks
    lo, hi = rng.uniform(0.05, 0.15), rng.uniform(0.8, 0.92)  # paper white, ink black
    x = lo + x * (hi - lo)
    x = x * rng.uniform(0.9, 1.1, size=3)  # a colour cast from the ambient light
    x = x + rng.normal(0, 0.015, size=x.shape[:2])[..., None]  # paper grain
    return np.clip(x * 255, 0, 255).astype(np.uint8)


def _screen(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = face.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle, freq = rng.uniform(0, np.pi), rng.uniform(0.5, 1.5)  # radians per pixel
    moire = np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
    x = face.astype(np.float32) + rng.uniform(6, 18) * moire[..., None]
    grid = np.ones((h, w, 3), np.float32)  # the sub-pixel columns: R, G, B in turn
    depth = rng.uniform(0.1, 0.25)
    for c in range(3):
        grid[:, (xx[0].astype(int) % 3) != c, c] -= depth
    x = x * grid * rng.uniform(1.05, 1.25) + rng.uniform(0, 20) * np.array([0.6, 0.8, 1.0])
    return np.clip(x, 0, 255).astype(np.uint8)


def _blur(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return cv2.GaussianBlur(face, (0, 0), rng.uniform(1.0, 2.0))
    k = int(rng.integers(5, 10))  # motion blur along a random direction
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2] = 1 / k
    rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    return cv2.filter2D(face, -1, kernel / max(kernel.sum(), 1e-6))


def _jpeg(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = face.shape[:2]
    side = int(rng.integers(24, 48))  # a re-captured low-resolution copy, compressed hard
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(5, 25))])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.resize(cv2.imdecode(data, cv2.IMREAD_UNCHANGED), (w, h))


def _flat_light(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = face.astype(np.float32)
    lum = x.mean(2)
    shading = cv2.GaussianBlur(lum, (0, 0), 8) + 1
    flat = x / shading[..., None] * lum.mean()  # the face's shading taken out
    x = x + rng.uniform(0.6, 0.9) * (flat - x)
    mean = x.mean()
    return np.clip(mean + (x - mean) * rng.uniform(0.5, 0.8), 0, 255).astype(np.uint8)


_SIMULATE = {
    "print": _print,
    "screen": _screen,
    "blur": _blur,
    "jpeg": _jpeg,
    "flat_light": _flat_light,
}


def simulate_attacks(crops: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """(N, 64, 64, 3) uint8 crops as the `kind` of attack would present them, parameters drawn
    per crop."""
    if kind not in _SIMULATE:
        raise ValueError(f"unknown attack {kind!r}; known: {', '.join(ATTACKS)}")
    rng = np.random.default_rng(seed)
    return np.stack([_SIMULATE[kind](np.ascontiguousarray(c), rng) for c in crops])


def _augment(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Mirror and shift only: colour, sharpness and texture are the evidence here."""
    flip = torch.rand(x.size(0), 1, 1, 1, generator=rng).to(x.device) < 0.5
    return translation(torch.where(flip, x.flip(3), x), rng, ratio=0.0625)


def _every_nth(n: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    held = np.arange(n) % every == every - 1
    return np.flatnonzero(held), np.flatnonzero(~held)


def train_general(
    real: np.ndarray,
    generated: np.ndarray,
    config: GeneralConfig | None = None,
    start: CalibratedDiscriminator | None = None,
    net: DCGANConfig | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[CalibratedDiscriminator, GeneralReport]:
    """Train on (N, 64, 64, 3) uint8 real crops and generator samples. Every `holdout_every`-th
    crop and sample is held out for the AUC and the calibration. Crops are held out within each
    person rather than whole persons: every enrolled person's crops come from the same kind of
    camera, and a person held out whole would teach the model that their clip's look is fake when
    few persons are enrolled. With `start`, a copy of it is trained on for `incremental_steps`;
    `start` itself is left as it was."""
    cfg, net = config or GeneralConfig(), net or DCGANConfig()
    device = torch.device(device)
    if len(real) < 8 or len(generated) < 8:
        raise ValueError(
            f"need at least 8 real crops and 8 generated samples, got {len(real)} and "
            f"{len(generated)}"
        )
    rng = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    real_held, real_train = _every_nth(len(real), cfg.holdout_every)
    gen_held, gen_train = _every_nth(len(generated), cfg.holdout_every)

    attacks_train = np.concatenate(
        [simulate_attacks(real[real_train], k, cfg.seed + i) for i, k in enumerate(ATTACKS)]
    )
    attacks_held = {
        k: simulate_attacks(real[real_held], k, cfg.seed + 100 + i) for i, k in enumerate(ATTACKS)
    }

    model = CalibratedDiscriminator(net, greyscale=False).to(device)
    if start is not None:
        model.load_state_dict(start.state_dict())
    else:
        model.discriminator.apply(weights_init)
    steps = cfg.incremental_steps if start is not None else cfg.steps

    def t(x: np.ndarray) -> torch.Tensor:
        return to_tensor(x).to(device)

    curve = fit_discriminator(
        model,
        t(real[real_train]),
        [
            (t(generated[gen_train]), cfg.generated_share),
            (t(attacks_train), 1 - cfg.generated_share),
        ],
        steps,
        cfg.batch_size,
        cfg.lr,
        rng,
        lambda x: _augment(x, rng),
        progress=progress,
    )
    held_real = t(real[real_held])
    held_negatives = np.concatenate([generated[gen_held], *attacks_held.values()])
    auc, eer = calibrate(model, held_real, t(held_negatives))
    with torch.no_grad():
        s_real = model.score(held_real).cpu().numpy()

        def auc_against(x: np.ndarray) -> float:
            return roc_auc(s_real, model.score(t(x)).cpu().numpy())

        auc_generated = auc_against(generated[gen_held])
        auc_attacks = {k: auc_against(v) for k, v in attacks_held.items()}
    a, b = model.platt.tolist()
    report = GeneralReport(
        auc_generated=auc_generated,
        auc_attacks=auc_attacks,
        auc=auc,
        eer=eer,
        platt_a=a,
        platt_b=b,
        held_out_real=len(real_held),
        held_out_generated=len(gen_held),
        train_real=len(real_train),
        train_generated=len(gen_train),
        steps=steps,
        incremental=start is not None,
        curve=curve,
    )
    return model, report
