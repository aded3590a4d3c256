"""Fusion of the two pieces of evidence about a candidate, and the 1-10 security scale they are
read on.

Fusion: the embedding distance and the personal discriminator each give a log-likelihood ratio
(genuine against impostor, at equal priors): the distance through a logistic fit on labelled
genuine and impostor pairs, the discriminator through its own Platt calibration. Their sum is the
fused score, and sigmoid(fused) the probability that the face is the candidate, at equal priors.
The sum treats the two as independent evidence, which they are not quite (both look at the same
face), so the probability leans confident; the levels below do not depend on it being exact.

Levels: level L promises an estimated false-match rate of 10^(-L/2) per comparison (L=6: 1e-3,
L=8: 1e-4, L=10: 1e-5). Its threshold is read off the fused scores of impostor trials (faces of
people never enrolled, against every enrolled person). Where the trials are too few to measure a
rate (fewer than 3/FMR of them: the rule of three), the threshold is extrapolated from an
exponential fit to the impostors' upper tail, never set below the highest impostor seen, and the
table says so.
"""

import base64
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from gan.verifier import platt_fit
from recognize.fusion import Fusion

LEVELS = tuple(range(1, 11))
TABLE_VERSION = 3  # 2: the learned fusion and calibration's notes; 3: the attack checks

# The embedding-distance fit used when the calibration faces carry no identity labels: dlib's
# ResNet on celeba_wild, 1079 faces of 224 identities, 2103 genuine and 579478 impostor pairs
# (`benchmarks/recognize.py --only fit`); even odds at distance 0.679.
DEFAULT_EMBEDDING_PLATT = {"dlib": (-26.711, 18.14)}


def level_fmr(level: int) -> float:
    """The false-match rate a level promises: 10^(-level/2)."""
    return 10.0 ** (-level / 2)


def embedding_logit(distance: float | np.ndarray, platt: tuple[float, float]) -> np.ndarray:
    return platt[0] * np.asarray(distance, dtype=np.float64) + platt[1]


def fuse(
    distance: float | np.ndarray, personal_logit: float | np.ndarray, platt: tuple[float, float]
) -> np.ndarray:
    """The fused score: embedding log-likelihood ratio plus the personal discriminator's."""
    return embedding_logit(distance, platt) + np.asarray(personal_logit, dtype=np.float64)


def probability(fused: float | np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(fused, dtype=np.float64)))


@dataclass
class LevelTable:
    thresholds: list[float]  # [L-1]: the smallest fused score that passes level L
    basis: list[str]  # [L-1]: "measured" or "extrapolated"
    estimated_fmr: list[float]  # [L-1]: share of impostor trials at or above the threshold
    embedding_platt: tuple[float, float]
    impostor_trials: int
    source: str = ""
    version: int = TABLE_VERSION
    fusion: dict | None = None  # recognize/fusion.py's Fusion; None: the sum of the two LLRs
    notes: list[str] = field(default_factory=list)  # what calibration decided, and why
    # recognize/authenticity.py's Authenticity; None: the setting's P(live) threshold alone
    authenticity: dict | None = None
    # the calibration faces' embeddings (float16, base64), the cohort each person's embedding
    # term is normalised by (recognize/fusion.py cohort_norm); None: no normalisation
    cohort: str | None = None
    cohort_shape: list[int] | None = None

    def cohort_embeddings(self) -> np.ndarray | None:
        if self.cohort is None or self.cohort_shape is None:
            return None
        raw = np.frombuffer(base64.b64decode(self.cohort), dtype="<f2")
        return raw.reshape(self.cohort_shape).astype(np.float32)

    @staticmethod
    def encode_cohort(embeddings: np.ndarray) -> dict:
        """The `cohort` and `cohort_shape` fields for (N, D) embeddings."""
        packed = np.ascontiguousarray(embeddings, dtype="<f2")
        return {
            "cohort": base64.b64encode(packed.tobytes()).decode("ascii"),
            "cohort_shape": list(packed.shape),
        }

    def fused_model(self) -> Fusion | None:
        return Fusion.from_dict(self.fusion) if self.fusion else None

    def level(self, fused: float) -> int:
        """The highest level the score passes, 0 when it passes none."""
        passed = [lv for lv, t in zip(LEVELS, self.thresholds, strict=True) if fused >= t]
        return max(passed, default=0)

    def threshold(self, level: int) -> float:
        return self.thresholds[level - 1]

    def rows(self) -> list[dict]:
        """One row per level: what the report and the README show."""
        return [
            {
                "level": lv,
                "target_fmr": level_fmr(lv),
                "threshold": round(self.thresholds[lv - 1], 4),
                "probability": round(float(probability(self.thresholds[lv - 1])), 6),
                "estimated_fmr": self.estimated_fmr[lv - 1],
                "basis": self.basis[lv - 1],
            }
            for lv in LEVELS
        ]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["embedding_platt"] = list(self.embedding_platt)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "LevelTable":
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["embedding_platt"] = tuple(fields["embedding_platt"])
        return cls(**fields)


def level_thresholds(
    impostor: np.ndarray, tail_share: float = 0.1
) -> tuple[list[float], list[str], list[float]]:
    """Per level: the threshold, its basis and the share of impostor scores at or above it.

    Measured: the threshold sits just above the (floor(FMR*n)+1)-th highest impostor score, so at
    most FMR*n impostors reach it. Extrapolated (n < 3/FMR): u + beta*ln(p_u/FMR) from the scores
    above the (1 - tail_share) quantile u, whose excess over u is fitted as exponential with mean
    beta; never below just above the highest impostor."""
    s = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    n = len(s)
    if n < 10:
        raise ValueError(f"need at least 10 impostor trials to calibrate levels, got {n}")
    u = float(np.quantile(s, 1.0 - tail_share))
    above = s[s > u]
    p_u = len(above) / n
    beta = max(float((above - u).mean()) if len(above) else 0.0, 1e-6)
    ceiling = float(np.nextafter(s[0], np.inf))
    thresholds, basis, observed = [], [], []
    for lv in LEVELS:
        fmr = level_fmr(lv)
        if n * fmr >= 3:
            t = float(np.nextafter(s[int(math.floor(fmr * n))], np.inf))
            kind = "measured"
        else:
            t = max(u + beta * math.log(max(p_u, 1.0 / n) / fmr), ceiling)
            kind = "extrapolated"
        if thresholds:
            t = max(t, thresholds[-1])
        thresholds.append(t)
        basis.append(kind)
        observed.append(float((s >= t).mean()))
    return thresholds, basis, observed


def calibrate_levels(
    impostor_fused: np.ndarray, embedding_platt: tuple[float, float], source: str, **extra
) -> LevelTable:
    """The table from the impostor trials' fused scores; `extra`: the fusion and the notes,
    stored with it."""
    thresholds, basis, observed = level_thresholds(impostor_fused)
    return LevelTable(
        thresholds=thresholds,
        basis=basis,
        estimated_fmr=observed,
        embedding_platt=(float(embedding_platt[0]), float(embedding_platt[1])),
        impostor_trials=len(impostor_fused),
        source=source,
        **extra,
    )


def fit_embedding_platt(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """The distance -> log-likelihood-ratio fit (class-balanced, so equal priors)."""
    d = np.concatenate([genuine, impostor])
    y = np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]
    return platt_fit(d, y)
