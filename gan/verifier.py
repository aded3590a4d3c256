"""The personal discriminator: the person's GAN discriminator fine-tuned into a verifier,
D_p(x) = P(x is a genuine capture of person p), calibrated on a held-out split (Platt scaling).

Positives are the person's real crops (augmented) and their identity-checked synthetic samples;
negatives are other people's faces (other enrolled persons, the impostor bank). Impostor-bank faces
may be grey and small (scikit-image's LFW subset is 25x25 grey), so a share of every class is
turned grey and resampled through 25 px: colour and sharpness cannot tell the classes apart, only
the face can.
"""

import copy
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facegate.metrics import equal_error_rate, roc_auc
from gan.augment import colour, translation
from gan.dcgan import DCGANConfig, Discriminator
from gan.train import to_tensor


@dataclass
class VerifierConfig:
    steps: int = 300
    batch_size: int = 64  # half positives, half negatives
    lr: float = 1e-4
    synthetic_share: float = 0.25  # of the positives in a batch, when synthetic samples exist
    holdout_every: int = 4  # every 4th real crop is held out for calibration
    holdout_negative_share: float = 0.25
    grey_p: float = 0.3
    low_res_p: float = 0.3
    low_res_px: int = 25
    # the verifier sees grey images only: with the grey LFW-subset bank, colour would otherwise
    # tell the classes apart (a development run on 295 unseen faces gave AUC 0.994 grey, 0.945
    # in colour; no benchmark repeats it)
    greyscale: bool = True
    seed: int = 0


@dataclass
class VerifierReport:
    auc: float  # held-out real crops of the person against held-out negatives
    eer: float
    platt_a: float
    platt_b: float
    held_out_positives: int
    held_out_negatives: int
    train_positives: int
    train_synthetic: int
    train_negatives: int
    curve: list[float] = field(default_factory=list)  # training loss per step

    def summary(self) -> dict:
        out = asdict(self)
        out.pop("curve")
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


class CalibratedDiscriminator(nn.Module):
    """A discriminator and its Platt calibration: forward gives calibrated logits. A person's
    verifier (grey input) and the general discriminator (colour) are both one of these."""

    def __init__(self, net: DCGANConfig, greyscale: bool = False):
        super().__init__()
        self.net = net
        self.greyscale = greyscale
        self.discriminator = Discriminator(net)
        self.register_buffer("platt", torch.tensor([1.0, 0.0]))  # a, b of sigmoid(a*s + b)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """The uncalibrated logit."""
        if self.greyscale:
            x = x.mean(1, keepdim=True).expand_as(x)
        return self.discriminator(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.platt[0] * self.score(x) + self.platt[1]

    @torch.no_grad()
    def probability(self, crops: np.ndarray) -> np.ndarray:
        """(N, 64, 64, 3) uint8 RGB crops -> (N,) P(genuine capture of the person)."""
        device = self.platt.device
        x = to_tensor(crops).to(device, self.platt.dtype)
        return torch.sigmoid(self(x)).float().cpu().numpy()

    def to_bytes(self) -> bytes:
        """fp16 weights with the architecture: what the artifact store keeps."""
        buffer = io.BytesIO()
        state = {k: v.detach().half().cpu() for k, v in self.state_dict().items()}
        torch.save({"net": asdict(self.net), "greyscale": self.greyscale, "state": state}, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(
        cls, data: bytes, device: torch.device | str = "cpu"
    ) -> "CalibratedDiscriminator":
        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model = cls(DCGANConfig(**saved["net"]), bool(saved["greyscale"]))
        model.load_state_dict({k: v.float() for k, v in saved["state"].items()})
        return model.to(device).eval()


def degrade(x: torch.Tensor, rng: torch.Generator, cfg: VerifierConfig) -> torch.Tensor:
    """Per sample: grey with probability grey_p; resampled through low_res_px with low_res_p."""
    n = x.size(0)
    draw = torch.rand(n, 2, generator=rng).to(x.device)
    grey = x.mean(1, keepdim=True).expand_as(x)
    x = torch.where((draw[:, 0] < cfg.grey_p).view(n, 1, 1, 1), grey, x)
    small = F.interpolate(x, size=cfg.low_res_px, mode="area")
    small = F.interpolate(small, size=x.shape[-1], mode="bilinear", align_corners=False)
    return torch.where((draw[:, 1] < cfg.low_res_p).view(n, 1, 1, 1), small, x)


def _augment(x: torch.Tensor, rng: torch.Generator, cfg: VerifierConfig) -> torch.Tensor:
    x = torch.where(torch.rand(x.size(0), 1, 1, 1, generator=rng).to(x.device) < 0.5, x, x.flip(3))
    return translation(colour(degrade(x, rng, cfg), rng), rng, ratio=0.0625)


def platt_fit(scores: np.ndarray, labels: np.ndarray, iterations: int = 100) -> tuple[float, float]:
    """a, b minimising the class-balanced log loss of sigmoid(a*s + b) against Platt's smoothed
    targets; balanced, so the probability reads as if genuine and impostor were equally likely."""
    s = torch.as_tensor(scores, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    target = torch.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    weight = torch.where(y > 0, 0.5 / n_pos, 0.5 / n_neg)
    ab = torch.tensor([1.0 / max(float(s.std()), 1e-6), 0.0], dtype=torch.float64)
    ab.requires_grad_(True)
    opt = torch.optim.LBFGS([ab], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (
            weight * F.binary_cross_entropy_with_logits(ab[0] * s + ab[1], target, reduction="none")
        ).sum()
        loss.backward()
        return loss

    opt.step(closure)
    a, b = ab.detach().tolist()
    return float(a), float(b)


def holdout_split(
    n: int, groups: np.ndarray | None, share: float, rng: torch.Generator, what: str = "negatives"
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the held-out and the training items: a share of whole identities when labels
    are given (at least 4 items held out and some left to train on), else of items."""
    order = torch.randperm(n, generator=rng).numpy()
    if groups is None:
        k = max(4, int(round(n * share)))
        return order[:k], order[k:]
    groups = np.asarray(groups)
    labels = np.unique(groups)
    labels = labels[torch.randperm(len(labels), generator=rng).numpy()]
    held = np.zeros(n, bool)
    for label in labels:
        if held.sum() >= max(4, n * share):
            break
        held |= groups == label
    if held.all():
        raise ValueError(f"the {what} need more than one identity to hold some out")
    return np.flatnonzero(held), np.flatnonzero(~held)


def fit_discriminator(
    model: CalibratedDiscriminator,
    positives: torch.Tensor,
    negatives: list[tuple[torch.Tensor, float]],
    steps: int,
    batch_size: int,
    lr: float,
    rng: torch.Generator,
    augment: Callable[[torch.Tensor], torch.Tensor],
    extra_positives: tuple[torch.Tensor, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[float]:
    """Train `model.discriminator` with binary cross-entropy on balanced batches: half drawn
    from `positives` (a share from `extra_positives` when given), half from the negative pools
    in their shares. Returns the loss per step; `progress(step, steps)` after each."""
    model.train()
    opt = torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    half = batch_size // 2

    def draw(pool: torch.Tensor, k: int) -> torch.Tensor:
        return pool[torch.randint(len(pool), (k,), generator=rng)]

    n_extra = int(round(half * extra_positives[1])) if extra_positives is not None else 0
    counts = [int(round(half * share)) for _, share in negatives]
    counts[0] += half - sum(counts)
    y = torch.cat([torch.ones(half), torch.zeros(half)]).to(positives.device)
    curve = []
    for step in range(steps):
        batch = [draw(positives, half - n_extra)]
        if n_extra:
            batch.append(draw(extra_positives[0], n_extra))
        batch += [draw(pool, k) for (pool, _), k in zip(negatives, counts, strict=True) if k]
        loss = F.binary_cross_entropy_with_logits(model.score(augment(torch.cat(batch))), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve.append(loss.item())
        if progress is not None:
            progress(step + 1, steps)
    model.eval()
    return curve


@torch.no_grad()
def calibrate(
    model: CalibratedDiscriminator, positives: torch.Tensor, negatives: torch.Tensor
) -> tuple[float, float]:
    """Platt-fit the model on held-out crops (stored in it); (AUC, EER) of its raw scores."""
    s_pos = model.score(positives).cpu().numpy()
    s_neg = model.score(negatives).cpu().numpy()
    a, b = platt_fit(
        np.concatenate([s_pos, s_neg]), np.r_[np.ones(len(s_pos)), np.zeros(len(s_neg))]
    )
    model.platt.copy_(torch.tensor([a, b]))
    return roc_auc(s_pos, s_neg), equal_error_rate(s_pos, s_neg)[0]


def train_verifier(
    discriminator: Discriminator,
    net: DCGANConfig,
    positives: np.ndarray,
    negatives: np.ndarray,
    synthetic: np.ndarray | None = None,
    negative_groups: np.ndarray | None = None,
    config: VerifierConfig | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[CalibratedDiscriminator, VerifierReport]:
    """Fine-tune a copy of `discriminator` on (N, 64, 64, 3) uint8 crops. The person's real crops
    are split: every `holdout_every`-th is held out with a share of the negatives, for the AUC,
    the EER and the Platt fit. With `negative_groups` (one identity label per negative), whole
    identities are held out, so the calibration sees people the verifier never saw. The
    discriminator passed in is left as it was."""
    cfg = config or VerifierConfig()
    device = torch.device(device)
    if len(positives) < 2 * cfg.holdout_every:
        raise ValueError(f"need at least {2 * cfg.holdout_every} real crops, got {len(positives)}")
    if len(negatives) < 8:
        raise ValueError(f"need at least 8 negative faces, got {len(negatives)}")
    rng = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    held = np.arange(len(positives)) % cfg.holdout_every == cfg.holdout_every - 1
    neg_held, neg_train = holdout_split(
        len(negatives), negative_groups, cfg.holdout_negative_share, rng
    )

    pos = to_tensor(positives[~held]).to(device)
    neg = to_tensor(negatives[neg_train]).to(device)
    syn = to_tensor(synthetic).to(device) if synthetic is not None and len(synthetic) else None

    model = CalibratedDiscriminator(net, cfg.greyscale).to(device)
    model.discriminator.load_state_dict(copy.deepcopy(discriminator.state_dict()))
    curve = fit_discriminator(
        model,
        pos,
        [(neg, 1.0)],
        cfg.steps,
        cfg.batch_size,
        cfg.lr,
        rng,
        lambda x: _augment(x, rng, cfg),
        extra_positives=(syn, cfg.synthetic_share) if syn is not None else None,
        progress=progress,
    )
    auc, eer = calibrate(
        model,
        to_tensor(positives[held]).to(device),
        to_tensor(negatives[neg_held]).to(device),
    )
    a, b = model.platt.tolist()
    report = VerifierReport(
        auc=auc,
        eer=eer,
        platt_a=a,
        platt_b=b,
        held_out_positives=int(held.sum()),
        held_out_negatives=len(neg_held),
        train_positives=len(pos),
        train_synthetic=0 if syn is None else len(syn),
        train_negatives=len(neg),
        curve=curve,
    )
    return model, report
