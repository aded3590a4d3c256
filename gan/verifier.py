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
    # tell the classes apart (measured: AUC 0.994 grey, 0.945 colour, on unseen people)
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


class PersonalVerifier(nn.Module):
    """A discriminator and its Platt calibration: forward gives calibrated logits."""

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
        torch.save(
            {"net": asdict(self.net), "greyscale": self.greyscale, "state": state}, buffer
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, device: torch.device | str = "cpu") -> "PersonalVerifier":
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
        loss = (weight * F.binary_cross_entropy_with_logits(ab[0] * s + ab[1], target, reduction="none")).sum()
        loss.backward()
        return loss

    opt.step(closure)
    a, b = ab.detach().tolist()
    return float(a), float(b)


def _split_negatives(
    n: int, groups: np.ndarray | None, cfg: VerifierConfig, rng: torch.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the held-out and the training negatives: a share of whole identities when
    labels are given (at least 4 faces held out and some left to train on), else of faces."""
    order = torch.randperm(n, generator=rng).numpy()
    if groups is None:
        k = max(4, int(round(n * cfg.holdout_negative_share)))
        return order[:k], order[k:]
    groups = np.asarray(groups)
    labels = np.unique(groups)
    labels = labels[torch.randperm(len(labels), generator=rng).numpy()]
    held = np.zeros(n, bool)
    for label in labels:
        if held.sum() >= max(4, n * cfg.holdout_negative_share):
            break
        held |= groups == label
    if held.all():
        raise ValueError("the negatives need more than one identity to hold some out")
    return np.flatnonzero(held), np.flatnonzero(~held)


def train_verifier(
    discriminator: Discriminator,
    net: DCGANConfig,
    positives: np.ndarray,
    negatives: np.ndarray,
    synthetic: np.ndarray | None = None,
    negative_groups: np.ndarray | None = None,
    config: VerifierConfig | None = None,
    device: torch.device | str = "cpu",
) -> tuple[PersonalVerifier, VerifierReport]:
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
    neg_held, neg_train = _split_negatives(len(negatives), negative_groups, cfg, rng)

    pos = to_tensor(positives[~held]).to(device)
    neg = to_tensor(negatives[neg_train]).to(device)
    syn = to_tensor(synthetic).to(device) if synthetic is not None and len(synthetic) else None

    model = PersonalVerifier(net, cfg.greyscale).to(device)
    model.discriminator.load_state_dict(copy.deepcopy(discriminator.state_dict()))
    model.train()
    opt = torch.optim.Adam(model.discriminator.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    half = cfg.batch_size // 2
    n_syn = int(round(half * cfg.synthetic_share)) if syn is not None else 0
    curve = []
    for _ in range(cfg.steps):
        batch = [pos[torch.randint(len(pos), (half - n_syn,), generator=rng)]]
        if n_syn:
            batch.append(syn[torch.randint(len(syn), (n_syn,), generator=rng)])
        batch.append(neg[torch.randint(len(neg), (half,), generator=rng)])
        x = _augment(torch.cat(batch), rng, cfg)
        y = torch.cat([torch.ones(half), torch.zeros(half)]).to(device)
        loss = F.binary_cross_entropy_with_logits(model.score(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve.append(loss.item())
    model.eval()

    with torch.no_grad():
        s_pos = model.score(to_tensor(positives[held]).to(device)).cpu().numpy()
        s_neg = model.score(to_tensor(negatives[neg_held]).to(device)).cpu().numpy()
    a, b = platt_fit(
        np.concatenate([s_pos, s_neg]), np.r_[np.ones(len(s_pos)), np.zeros(len(s_neg))]
    )
    model.platt.copy_(torch.tensor([a, b]))
    eer, _ = equal_error_rate(s_pos, s_neg)
    report = VerifierReport(
        auc=roc_auc(s_pos, s_neg),
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
