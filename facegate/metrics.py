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


# --- biometric performance (ISO/IEC 19795-1, NIST FRTE conventions): accept when score >= t -----


def wilson_interval(failures: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% for z = 1.96) of a rate `failures / trials`."""
    if trials <= 0:
        raise ValueError("a rate needs at least one trial")
    p = failures / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def threshold_at_rate(negatives: np.ndarray, target: float) -> float:
    """The smallest threshold at which at most `target` of the `negatives` (impostor scores, or
    non-mated searches' top scores) reach it: FMR(t) = #(negative >= t) / n <= target."""
    s = np.sort(np.asarray(negatives, float).ravel())[::-1]
    if len(s) == 0:
        raise ValueError("a threshold needs at least one impostor score")
    allowed = int(np.floor(target * len(s) + 1e-9))
    if allowed >= len(s):
        return float("-inf")
    return float(np.nextafter(s[allowed], np.inf))  # everything above the first excluded score


def det_curve(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, np.ndarray]:
    """FMR and FNMR at every distinct score as threshold (and +inf): the points of a DET plot."""
    g, i = np.asarray(genuine, float).ravel(), np.asarray(impostor, float).ravel()
    if len(g) == 0 or len(i) == 0:
        raise ValueError("a DET curve needs genuine and impostor scores")
    thresholds = np.append(np.unique(np.concatenate([g, i])), np.inf)
    g_sorted, i_sorted = np.sort(g), np.sort(i)
    fnmr = np.searchsorted(g_sorted, thresholds, side="left") / len(g)  # genuine < t
    fmr = 1 - np.searchsorted(i_sorted, thresholds, side="left") / len(i)  # impostor >= t
    return {"threshold": thresholds, "fmr": fmr, "fnmr": fnmr}


def rule_of_three(target: float) -> int:
    """Trials needed before a rate as small as `target` can be claimed: with none observed in
    n trials the 95% upper bound is about 3/n (the rule of three)."""
    return int(np.ceil(3 / target - 1e-9))


def miss_rate_at(positives: np.ndarray, negatives: np.ndarray, target: float) -> dict:
    """The miss rate of `positives` at the threshold where the `negatives`' false-accept rate is
    at most `target`: FNMR at FMR (verification), or FNIR at FPIR (open-set identification, with
    a missed mated search scored -inf). With a Wilson 95% interval, and whether the negatives are
    enough to claim `target` at all (rule of three)."""
    if not 0 < target < 1:
        raise ValueError(f"a false-accept rate target is between 0 and 1, got {target}")
    p, n = np.asarray(positives, float).ravel(), np.asarray(negatives, float).ravel()
    if len(p) == 0:
        raise ValueError("a miss rate needs at least one genuine (mated) score")
    threshold = threshold_at_rate(n, target)
    misses = int((p < threshold).sum())
    needed = rule_of_three(target)
    return {
        "target": target,
        "threshold": threshold,
        "miss_rate": misses / len(p),
        "ci95": wilson_interval(misses, len(p)),
        "false_accept_rate": float((n >= threshold).mean()),
        "positives": len(p),
        "negatives": len(n),
        "measurable": len(n) >= needed,
        "negatives_needed": needed,
    }


def presentation_attack_rates(
    bona_fide: np.ndarray, attacks: dict[str, np.ndarray], threshold: float
) -> dict:
    """ISO/IEC 30107-3 at one threshold on a 'bona fide' score: APCER per attack type (attacks
    taken for bona fide, score >= threshold), the worst type's APCER, and BPCER (bona fide taken
    for attacks), each with its Wilson 95% interval."""
    b = np.asarray(bona_fide, float).ravel()
    if len(b) == 0:
        raise ValueError("BPCER needs at least one bona fide presentation")
    per_type = {}
    for kind, scores in attacks.items():
        s = np.asarray(scores, float).ravel()
        if len(s) == 0:
            raise ValueError(f"attack type {kind!r} has no presentations")
        passed = int((s >= threshold).sum())
        per_type[kind] = {
            "apcer": passed / len(s),
            "ci95": wilson_interval(passed, len(s)),
            "presentations": len(s),
        }
    rejected = int((b < threshold).sum())
    return {
        "threshold": threshold,
        "apcer": per_type,
        "apcer_max": max((v["apcer"] for v in per_type.values()), default=0.0),
        "bpcer": rejected / len(b),
        "bpcer_ci95": wilson_interval(rejected, len(b)),
        "bona_fide": len(b),
    }
