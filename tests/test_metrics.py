"""AUC and EER against values worked out by hand."""

import numpy as np
import pytest

from facegate.metrics import equal_error_rate, roc_auc


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
