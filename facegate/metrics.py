"""Score-separation metrics shared by training, benchmarks and evaluation. Higher score = more
likely genuine throughout."""

import numpy as np


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """P(a genuine score beats an impostor score), ties counting half (Mann-Whitney U)."""
    g, i = np.asarray(genuine, float).ravel(), np.asarray(impostor, float).ravel()
    if len(g) == 0 or len(i) == 0:
        raise ValueError("AUC needs at least one genuine and one impostor score")
    scores = np.concatenate([g, i])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # average the ranks of tied scores
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    u = ranks[: len(g)].sum() - len(g) * (len(g) + 1) / 2
    return float(u / (len(g) * len(i)))


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): where the false non-match rate (genuine < t) meets the false match rate
    (impostor >= t), taken as the mean of the two at the threshold where they are closest."""
    g, i = np.asarray(genuine, float).ravel(), np.asarray(impostor, float).ravel()
    if len(g) == 0 or len(i) == 0:
        raise ValueError("EER needs at least one genuine and one impostor score")
    best = (2.0, 0.0, 0.0)
    for t in np.unique(np.concatenate([g, i, [np.inf]])):
        fnmr, fmr = float((g < t).mean()), float((i >= t).mean())
        if abs(fnmr - fmr) < best[0]:
            best = (abs(fnmr - fmr), (fnmr + fmr) / 2, float(t))
    return best[1], best[2]
