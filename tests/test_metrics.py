"""AUC and EER against values worked out by hand."""

import numpy as np
import pytest

from facegate.metrics import (
    det_curve,
    equal_error_rate,
    miss_rate_at,
    presentation_attack_rates,
    roc_auc,
    rule_of_three,
    wilson_interval,
)


def test_auc_counts_pairs_won_and_ties_as_half():
    # pairs (g, i): (3,1) win, (3,2) win, (2,1) win, (2,2) tie, (0,1) loss, (0,2) loss -> 3.5/6
    assert roc_auc([3, 2, 0], [1, 2]) == pytest.approx(3.5 / 6)
    assert roc_auc([5, 6], [1, 2, 3]) == 1.0
    assert roc_auc([1], [2]) == 0.0


def test_eer_where_false_matches_meet_false_non_matches():
    genuine = np.array([0.9, 0.8, 0.7, 0.3])
    impostor = np.array([0.1, 0.2, 0.6, 0.75])
    # at t=0.7: genuine below 0.7 -> 1/4; impostors at or above 0.7 -> 1/4
    eer, t = equal_error_rate(genuine, impostor)
    assert eer == pytest.approx(0.25) and t == pytest.approx(0.7)
    assert equal_error_rate([2, 3], [0, 1])[0] == 0.0


def test_metrics_refuse_an_empty_side():
    with pytest.raises(ValueError):
        roc_auc([], [1])
    with pytest.raises(ValueError):
        equal_error_rate([1], [])


# --- FNMR@FMR, DET, open set, presentation attacks: against values worked out by hand ----------

GENUINE = np.array([0.9, 0.8, 0.7, 0.6, 0.3])
IMPOSTOR = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.65, 0.85])


def test_wilson_interval_of_two_in_five():
    # p = 0.4, z^2 = 3.8416: centre (0.4 + 0.38416) / 1.76832, half-width 1.96 * 0.29397 / 1.76832
    low, high = wilson_interval(2, 5)
    assert low == pytest.approx(0.1176, abs=1e-4) and high == pytest.approx(0.7693, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] == pytest.approx(
        0.2775, abs=1e-4
    )


def test_fnmr_at_fmr_with_the_rule_of_three():
    # FMR <= 0.1 of 10 impostors allows one false match (0.85); the threshold sits just above 0.65,
    # so genuine 0.6 and 0.3 are missed: FNMR 2/5
    point = miss_rate_at(GENUINE, IMPOSTOR, 0.1)
    assert point["miss_rate"] == pytest.approx(0.4) and point["false_accept_rate"] == 0.1
    assert 0.65 < point["threshold"] < 0.7
    assert point["ci95"] == pytest.approx(wilson_interval(2, 5))
    # 10 impostor scores cannot support FMR = 0.1 (rule of three: 30 needed)
    assert not point["measurable"] and point["negatives_needed"] == 30
    # FMR <= 0.2 allows two (0.85, 0.65): threshold above 0.4, genuine 0.3 missed -> 1/5
    assert miss_rate_at(GENUINE, IMPOSTOR, 0.2)["miss_rate"] == pytest.approx(0.2)
    # FMR <= 0.05 of 10 allows none: above 0.85, only 0.9 passes -> 4/5
    assert miss_rate_at(GENUINE, IMPOSTOR, 0.05)["miss_rate"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="between 0 and 1"):
        miss_rate_at(GENUINE, IMPOSTOR, 0.0)
    assert rule_of_three(1e-3) == 3000 and miss_rate_at(GENUINE, np.zeros(3000), 1e-3)["measurable"]


def test_det_curve_points():
    curve = det_curve([0.2, 0.6], [0.1, 0.6, 0.9])
    # thresholds 0.1, 0.2, 0.6, 0.9, inf
    assert list(curve["threshold"]) == [0.1, 0.2, 0.6, 0.9, np.inf]
    assert list(curve["fnmr"]) == [0, 0, 0.5, 1, 1]
    assert curve["fmr"] == pytest.approx([1, 2 / 3, 2 / 3, 1 / 3, 0])


def test_fnir_at_fpir_counts_rank_one_misses_as_misses():
    # four mated searches: two right at rank 1 with scores 5 and 3, one right but scored 1, one
    # wrong at rank 1 (-inf); non-mated top scores 0..9: FPIR <= 0.1 allows one (9) -> t above 8
    mated = np.array([5.0, 3.0, 1.0, -np.inf])
    nonmated = np.arange(10.0)
    assert miss_rate_at(mated, nonmated, 0.1)["miss_rate"] == 1.0
    # FPIR <= 0.5 allows five (5..9): t just above 4 -> only 5 passes: FNIR 3/4
    assert miss_rate_at(mated, nonmated, 0.5)["miss_rate"] == pytest.approx(0.75)


def test_presentation_attack_rates():
    rates = presentation_attack_rates(
        bona_fide=[0.9, 0.8, 0.3, 0.7],
        attacks={"print": [0.1, 0.6, 0.2], "replay": [0.55, 0.1]},
        threshold=0.5,
    )
    assert rates["apcer"]["print"]["apcer"] == pytest.approx(1 / 3)
    assert rates["apcer"]["replay"]["apcer"] == pytest.approx(1 / 2)
    assert rates["apcer_max"] == pytest.approx(0.5) and rates["bpcer"] == pytest.approx(0.25)
