"""Score fusion learned on trials: the pieces of evidence about a candidate (embedding distance,
the distances to the person's other samples, their personal discriminator, the general
discriminator) become one log-likelihood ratio through a logistic regression fitted on genuine and
impostor trials, instead of a sum that lets a weak discriminator pull a strong embedding down.

Weights are kept non-negative (more evidence for the person never lowers the score), the classes
are weighted equally (the output is a log-likelihood ratio at equal priors, as the level table
expects), and a term whose cross-validated contribution is nil gets weight 0: it is dropped and
the fit says so. Each term's weight and contribution to a score are what the report shows.
"""

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import minimize

FUSION_VERSION = 1
# What the product fuses per candidate (the general discriminator stays a separate gate there):
# the embedding log-likelihood ratio, minus the mean distance to the person's 3 nearest real
# samples, minus the distance to their nearest identity-checked GAN sample, and their personal
# discriminator's calibrated logit.
PRODUCT_TERMS = ["embedding", "nearest_3", "synthetic", "personal"]
NO_SYNTHETIC_DISTANCE = 2.0  # beyond any face: a person none of whose GAN samples verified
# Adaptive score normalisation (Sturim and Reynolds, ICASSP 2005; AS-norm in speaker
# verification): a person's embedding score is measured against the highest ADAPTIVE_TOP share of
# a cohort's scores against that person (faces of people never enrolled: the calibration faces),
# so a person many strangers resemble needs a closer match than one nobody resembles.
ADAPTIVE_TOP = 0.1


def cohort_norm(cohort_scores: np.ndarray, top: float = ADAPTIVE_TOP) -> tuple[float, float]:
    """(mean, standard deviation) of the highest `top` share of the cohort's embedding scores
    against one person (at least 2 of them)."""
    s = np.sort(np.asarray(cohort_scores, dtype=np.float64).ravel())[::-1]
    if len(s) < 2:
        raise ValueError(f"a cohort needs at least 2 faces, got {len(s)}")
    high = s[: max(2, int(np.ceil(top * len(s))))]
    return float(high.mean()), float(max(high.std(), 1e-6))


def person_norm(cohort_to_real: np.ndarray, platt: tuple[float, float]) -> tuple[float, float]:
    """One person's cohort_norm from the (C, n) distances of C cohort faces to their n real
    samples: the cohort's embedding terms (the nearest sample through the logistic fit)."""
    nearest = np.atleast_2d(np.asarray(cohort_to_real, dtype=np.float64)).min(1)
    return cohort_norm(platt[0] * nearest + platt[1])


def candidate_features(
    real_distances: np.ndarray,
    synthetic_distances: np.ndarray | None,
    personal_logit: np.ndarray | float | None,
    platt: tuple[float, float],
    norm: tuple[float, float] | None = None,
) -> np.ndarray:
    """(N, PRODUCT_TERMS) for N faces against one person, from the (N, n) distances to the
    person's real samples, the (N, m) distances to their kept GAN samples (None or m = 0: none)
    and their personal discriminator's logits (None: no model, a neutral 0). With `norm` (the
    person's cohort_norm), the embedding term is normalised by it."""
    d = np.sort(np.atleast_2d(np.asarray(real_distances, dtype=np.float64)), axis=1)
    n = len(d)
    embedding = platt[0] * d[:, 0] + platt[1]
    if norm is not None:
        embedding = (embedding - norm[0]) / norm[1]
    nearest_3 = -d[:, :3].mean(1)
    if synthetic_distances is None or np.asarray(synthetic_distances).size == 0:
        synthetic = np.full(n, -NO_SYNTHETIC_DISTANCE)
    else:
        synthetic = -np.atleast_2d(np.asarray(synthetic_distances, dtype=np.float64)).min(1)
    personal = np.zeros(n) if personal_logit is None else np.broadcast_to(personal_logit, (n,))
    return np.stack([embedding, nearest_3, synthetic, np.asarray(personal, np.float64)], axis=1)


@dataclass
class Fusion:
    terms: list[str]  # the names of the feature columns, in order
    weights: list[float]  # one per term (0: the term adds nothing and is left out)
    bias: float
    scale: list[float]  # each term is divided by its scale before weighting (fit's spread)
    dropped: list[str] = field(default_factory=list)  # terms whose weight was set to 0, and why
    cv_log_loss: dict[str, float] = field(default_factory=dict)  # with all terms / without each
    trials: dict[str, int] = field(default_factory=dict)  # genuine and impostor trials fitted on
    version: int = FUSION_VERSION

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N, terms) features -> (N,) fused log-likelihood ratios."""
        x = np.asarray(features, dtype=np.float64) / np.asarray(self.scale)
        with np.errstate(invalid="ignore"):
            # a term with weight 0 never contributes, even where it is -inf (no such model)
            terms = np.where(np.asarray(self.weights) == 0, 0.0, x * np.asarray(self.weights))
        return terms.sum(-1) + self.bias

    def contributions(self, features: np.ndarray) -> dict[str, float]:
        """Each term's share of one fused score (the bias is listed as its own term)."""
        x = np.asarray(features, dtype=np.float64) / np.asarray(self.scale)
        out = {
            t: (0.0 if w == 0 else float(w * v))
            for t, w, v in zip(self.terms, self.weights, x, strict=True)
        }
        out["bias"] = float(self.bias)
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Fusion":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float, nonnegative: bool = True
) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression with an L2 penalty, its weights kept non-negative
    unless told otherwise; (weights, bias)."""
    pos, neg = y == 1, y == 0
    sample_weight = np.where(pos, 0.5 / max(pos.sum(), 1), 0.5 / max(neg.sum(), 1))
    sign = np.where(pos, 1.0, -1.0)
    d = x.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        margin = sign * (x @ w + b)
        # log(1 + exp(-m)) and its derivative, stable for large |m|
        value = np.logaddexp(0.0, -margin)
        grad_margin = -sample_weight * sign / (1.0 + np.exp(np.clip(margin, -500, 500)))
        total = float((sample_weight * value).sum() + 0.5 * l2 * (w @ w))
        grad = np.r_[x.T @ grad_margin + l2 * w, grad_margin.sum()]
        return total, grad

    bounds = [(0.0 if nonnegative else None, None)] * d + [(None, None)]
    start = np.r_[np.full(d, 0.1 if nonnegative else 0.0), 0.0]
    result = minimize(loss, start, jac=True, bounds=bounds, method="L-BFGS-B")
    return result.x[:d], float(result.x[d])


def _balanced_log_loss(score: np.ndarray, y: np.ndarray) -> float:
    sign = np.where(y == 1, 1.0, -1.0)
    value = np.logaddexp(0.0, -sign * score)
    return float(0.5 * value[y == 1].mean() + 0.5 * value[y == 0].mean())


def _cv_log_loss(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, columns: list[int], l2: float
) -> float:
    """Out-of-fold balanced log loss of a fit on `columns` (folds: the distinct `groups`)."""
    score = np.zeros(len(y))
    for g in np.unique(groups):
        test = groups == g
        w, b = fit_logistic(x[~test][:, columns], y[~test], l2)
        score[test] = x[test][:, columns] @ w + b
    return _balanced_log_loss(score, y)


def fit_fusion(
    features: np.ndarray,
    labels: np.ndarray,
    terms: list[str],
    folds: int = 5,
    groups: np.ndarray | None = None,
    l2: float = 1e-4,
    min_gain: float = 1e-3,
    keep: tuple[str, ...] = ("embedding",),
) -> Fusion:
    """Fit the fusion on trials: `features` (N, terms), `labels` 1 genuine / 0 impostor.

    Each term in turn is left out; when the cross-validated balanced log loss without it is no
    worse than with it (less than `min_gain` nats better with it), its weight is set to 0. Terms
    in `keep` always stay. `groups` assigns trials to folds (say, by identity, so one person's
    trials never sit on both sides); by default trials are dealt to `folds` folds in turn."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    if x.ndim != 2 or x.shape[1] != len(terms) or len(x) != len(y):
        raise ValueError(f"features must be (N, {len(terms)}) with N labels")
    if y.sum() < 2 or (1 - y).sum() < 2:
        raise ValueError("fusion needs at least 2 genuine and 2 impostor trials")
    if not np.isfinite(x).all():
        raise ValueError("fusion features must be finite")
    scale = x.std(0)
    scale[scale == 0] = 1.0
    x = x / scale
    groups = np.arange(len(y)) % folds if groups is None else np.asarray(groups)
    active = list(range(len(terms)))
    losses = {"all": _cv_log_loss(x, y, groups, active, l2)}
    dropped = []
    for i, term in enumerate(terms):
        if term in keep or len(active) == 1:
            continue
        without = [c for c in active if c != i]
        losses[f"without_{term}"] = _cv_log_loss(x, y, groups, without, l2)
        if losses[f"without_{term}"] <= losses["all"] + min_gain:
            active = without
            losses["all"] = _cv_log_loss(x, y, groups, active, l2)
            dropped.append(f"{term}: held-out log loss {losses[f'without_{term}']:.4f} without it")
    w, b = fit_logistic(x[:, active], y, l2)
    weights = np.zeros(len(terms))
    weights[active] = w
    for i in active:
        if weights[i] == 0:  # the bound held it at 0: the data want it negative
            dropped.append(f"{terms[i]}: its fitted weight is 0")
    return Fusion(
        terms=list(terms),
        weights=[float(v) for v in weights],
        bias=b,
        scale=[float(v) for v in scale],
        dropped=dropped,
        cv_log_loss={k: round(v, 5) for k, v in losses.items()},
        trials={"genuine": int(y.sum()), "impostor": int((1 - y).sum())},
    )
