"""Presentation-attack checks a matched face must pass before it may open a door, and their
calibration on bona fide captures.

Two checks read the face's 64 px crop:
- the general discriminator (gan/general.py): its calibrated P(live capture);
- the synthetic-face check: a logistic regression on the crop's radial log power spectrum, fitted
  on the enrolled persons' real crops against samples of their personal generators. Up-sampling
  by transposed convolutions leaves its trace in an image's spectrum (Durall et al., CVPR 2020;
  Frank et al., ICML 2020), and every personal generator shares the architecture, so a check
  fitted on some persons' generators also stops the samples of a generator it never saw
  (tests/test_authenticity.py). It knows one family of generators: a face synthesized by another
  architecture is not what it was fitted on.

A threshold means something only against bona fide captures from cameras the models never saw.
`facegate calibrate` reads both thresholds off its calibration faces (people never enrolled): the
two checks together reject at most `authenticity_max_bpcer` of them, a quarter of that share
allotted to the general discriminator (GENERAL_SHARE) and the rest to the synthetic-face check; the
general discriminator's threshold never rises above the setting `authenticity_min_probability`.
The check's threshold also keeps within its share on the enrolled persons' real crops it was not
fitted on (every 4th, as the personal discriminators hold them out): the enrollment cameras' own
captures, whose spectra differ from web photos' (a video clip's frames score lower).
Before any calibration the setting alone applies.
"""

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from recognize.fusion import fit_logistic

SPECTRUM_BINS = 32  # radii 1..32 of a 64 px crop's centred spectrum
# On standardised features, the loss a class-balanced mean. 0.2 (before) let up to 26% of the
# samples of photo enrollments' GANs trained 480 steps through, fitted on 3 persons (40 glint
# photos each, or the clip) and thresholded at 1.5% of 193 photos of 40 celeba identities; 0.003
# let none through, with the same rejections of 199 photos of 40 other identities (an experiment),
# and `facegate eval` then passed 0 of 96 GAN samples through (d) (README, Evaluation).
SYNTHETIC_L2 = 0.003
AUTHENTICITY_VERSION = 1
# The general discriminator's share of the bona fide rejections allowed. In the development run
# on the shared data (2 folds of never-enrolled faces, a 2% budget) the general discriminator at
# its calibrated threshold stopped no GAN sample or replay frame that the synthetic-face check
# let through, while the check needed most of the budget: at 1% it let 13-15% of the real phone
# replay's frames through in one fold, at 2% none in either.
GENERAL_SHARE = 0.25
# Fewer bona fide calibration faces than this and a threshold at a 2% share is the lowest score
# read off a handful of faces: calibration refuses.
MIN_BONA_FIDE = 20

_yy, _xx = np.mgrid[0:64, 0:64]
_RADIUS = torch.from_numpy(np.hypot(_yy - 32, _xx - 32).astype(np.int64).ravel())
_PER_RADIUS = torch.bincount(_RADIUS)


def spectrum_torch(x: torch.Tensor) -> torch.Tensor:
    """(N, C, 64, 64) pixel values in [0, 255] -> (N, SPECTRUM_BINS), differentiable (the
    white-box attacks in evaluate/ ascend through it): the mean log magnitude of the grey crop's
    centred 2-D Fourier transform on each ring of integer radius 1..32."""
    if x.ndim != 4 or tuple(x.shape[2:]) != (64, 64):
        raise ValueError(f"expected (N, channels, 64, 64) crops, got shape {tuple(x.shape)}")
    grey = x.mean(1)
    grey = grey - grey.mean((1, 2), keepdim=True)
    magnitude = torch.fft.fftshift(torch.fft.fft2(grey).abs(), dim=(1, 2))
    log = torch.log(magnitude + 0.1).reshape(len(x), -1)
    radius = _RADIUS.to(x.device)
    rings = torch.zeros(len(x), len(_PER_RADIUS), dtype=log.dtype, device=x.device)
    rings = rings.index_add(1, radius, log) / _PER_RADIUS.to(x.device, log.dtype)
    return rings[:, 1 : SPECTRUM_BINS + 1]


def spectrum_features(crops_64: np.ndarray) -> np.ndarray:
    """(N, 64, 64, 3) uint8 crops -> (N, SPECTRUM_BINS), as spectrum_torch."""
    crops = np.asarray(crops_64)
    if crops.ndim != 4:
        raise ValueError(f"expected (N, 64, 64, channels) crops, got shape {crops.shape}")
    x = torch.from_numpy(crops.astype(np.float64)).permute(0, 3, 1, 2)
    return spectrum_torch(x).numpy()


@dataclass
class SyntheticCheck:
    """score(crops) is a logit: high for a camera capture, low for a generator's sample."""

    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    trials: dict[str, int] = field(default_factory=dict)  # real crops and samples fitted on

    def score(self, crops_64: np.ndarray) -> np.ndarray:
        if len(crops_64) == 0:
            return np.zeros(0)
        z = (spectrum_features(crops_64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.weights) + self.bias

    def score_torch(self, x: torch.Tensor) -> torch.Tensor:
        """The same of (N, C, 64, 64) pixel values in [0, 255], differentiable."""
        f = spectrum_torch(x)

        def t(v) -> torch.Tensor:
            return torch.as_tensor(v, dtype=f.dtype, device=f.device)

        return ((f - t(self.mean)) / t(self.scale)) @ t(self.weights) + self.bias

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SyntheticCheck":
        return cls(**data)


def fit_synthetic_check(
    real: np.ndarray, generated: np.ndarray, l2: float = SYNTHETIC_L2
) -> SyntheticCheck:
    """Fit on (N, 64, 64, 3) real crops against generator samples, the classes weighted equally."""
    if len(real) < 8 or len(generated) < 8:
        raise ValueError(
            f"the synthetic-face check needs at least 8 real crops and 8 generator samples, got "
            f"{len(real)} and {len(generated)}"
        )
    x = np.concatenate([spectrum_features(real), spectrum_features(generated)])
    y = np.r_[np.ones(len(real)), np.zeros(len(generated))]
    mean, scale = x.mean(0), x.std(0) + 1e-6
    w, b = fit_logistic((x - mean) / scale, y, l2, nonnegative=False)
    return SyntheticCheck(
        mean.tolist(),
        scale.tolist(),
        w.tolist(),
        b,
        {"real": int(len(real)), "generated": int(len(generated))},
    )


@dataclass
class Authenticity:
    """The calibrated checks, stored with the level table."""

    max_bpcer: float  # the share of bona fide calibration faces both checks together may reject
    bona_fide: int  # calibration faces the thresholds were read from
    general_threshold: float  # P(live capture) below this: rejected
    general_sha256: str | None  # the general discriminator it was calibrated for
    synthetic: dict | None = None  # SyntheticCheck; None: not fitted (and why in `notes`)
    synthetic_threshold: float | None = None
    rejected: dict[str, float] = field(default_factory=dict)  # calibration faces, per check
    notes: list[str] = field(default_factory=list)
    version: int = AUTHENTICITY_VERSION

    def synthetic_check(self) -> SyntheticCheck | None:
        return SyntheticCheck.from_dict(self.synthetic) if self.synthetic else None

    def margin(self, live: np.ndarray, synthetic: np.ndarray | None) -> np.ndarray:
        """One score per face that is >= 0 exactly when every check passes: the smaller of the
        two checks' distances above their thresholds (the general discriminator's as a logit)."""
        live = np.clip(np.asarray(live, dtype=np.float64), 1e-7, 1 - 1e-7)
        t = min(max(self.general_threshold, 1e-7), 1 - 1e-7)
        out = np.log(live / (1 - live)) - np.log(t / (1 - t))
        if self.synthetic is not None and synthetic is not None:
            out = np.minimum(out, np.asarray(synthetic, np.float64) - self.synthetic_threshold)
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Authenticity":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _lower_quantile(scores: np.ndarray, share: float) -> float:
    """A threshold that at most `share` of `scores` fall below."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    k = int(np.floor(share * len(s)))  # this many may be rejected
    return float(s[k]) if k < len(s) else float(s[-1])


def calibrate_authenticity(
    bona_fide_live: np.ndarray,
    bona_fide_synthetic: np.ndarray | None,
    check: SyntheticCheck | None,
    max_bpcer: float,
    max_general_threshold: float,
    general_sha256: str | None = None,
    enrolled_synthetic: np.ndarray | None = None,
) -> Authenticity:
    """Thresholds read off bona fide captures: the general discriminator's P(live) of them and,
    with a synthetic-face check, its scores of them. The general discriminator rejects at most
    GENERAL_SHARE * max_bpcer of them (all of max_bpcer without a check), the check the rest.

    `enrolled_synthetic`: the check's scores of enrolled persons' real crops it was not fitted on
    (captures of the enrollment cameras, often the doors' own). A spectrum reads the camera and its
    compression as well as the face: video frames score lower than web photos. The check's
    threshold then keeps within the share on each source, the lower of the two thresholds."""
    if not 0 < max_bpcer < 1:
        raise ValueError(f"max_bpcer must lie in (0, 1), got {max_bpcer}")
    live = np.asarray(bona_fide_live, dtype=np.float64)
    n = len(live)
    if n < MIN_BONA_FIDE:
        raise ValueError(f"need at least {MIN_BONA_FIDE} bona fide calibration faces, got {n}")
    with_check = check is not None and bona_fide_synthetic is not None
    share = max_bpcer * GENERAL_SHARE if with_check else max_bpcer
    general = min(max_general_threshold, _lower_quantile(live, share))
    out = Authenticity(max_bpcer, n, general, general_sha256)
    out.rejected["general"] = float((live < general).mean())
    out.notes.append(
        f"general discriminator: P(live) threshold {general:.4g} (the setting "
        f"{max_general_threshold}, or lower so that at most {share:.3g} of the {n} calibration "
        f"faces fall below it); it rejects {out.rejected['general']:.3f} of them"
    )
    if not with_check:
        return out
    scores = np.asarray(bona_fide_synthetic, dtype=np.float64)
    out.synthetic = check.to_dict()
    out.synthetic_threshold = _lower_quantile(scores, max_bpcer - share)
    enrolled = np.zeros(0) if enrolled_synthetic is None else np.asarray(enrolled_synthetic, float)
    if len(enrolled):
        out.synthetic_threshold = min(
            out.synthetic_threshold, _lower_quantile(enrolled, max_bpcer - share)
        )
        out.rejected["synthetic_enrolled"] = float((enrolled < out.synthetic_threshold).mean())
    out.rejected["synthetic"] = float((scores < out.synthetic_threshold).mean())
    out.rejected["either"] = float((out.margin(live, scores) < 0).mean())
    out.notes.append(
        f"synthetic-face check (fitted on {check.trials.get('real')} real crops against "
        f"{check.trials.get('generated')} generator samples): threshold "
        f"{out.synthetic_threshold:.4g}; it rejects {out.rejected['synthetic']:.3f} of the "
        f"calibration faces, the two checks together {out.rejected['either']:.3f}"
        + (
            f"; {out.rejected['synthetic_enrolled']:.3f} of {len(enrolled)} enrolled persons' "
            "real crops it was not fitted on"
            if len(enrolled)
            else ""
        )
    )
    return out
