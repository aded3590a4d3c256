"""Score fusion learned on trials: informative terms are weighted, useless ones dropped."""

import numpy as np
import pytest

from recognize.fusion import Fusion, fit_fusion


def _trials(n_genuine=300, n_impostor=3000, seed=0):
    """Embedding score separates the classes by 3 sd, a second term by 1.5 sd independently of
    it, a third is pure noise, a fourth points the wrong way."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_genuine), np.zeros(n_impostor)].astype(int)
    embedding = rng.normal(0, 1, len(y)) + 3.0 * y
    second = rng.normal(0, 1, len(y)) + 1.5 * y
    noise = rng.normal(0, 1, len(y))
    wrong = rng.normal(0, 1, len(y)) - 1.0 * y
    return np.c_[embedding, second, noise, wrong], y


def test_informative_terms_are_weighted_and_useless_ones_dropped():
    x, y = _trials()
    fusion = fit_fusion(x, y, ["embedding", "second", "noise", "wrong"])
    w = dict(zip(fusion.terms, fusion.weights, strict=True))
    assert w["embedding"] > 0 and w["second"] > 0
    assert w["noise"] == 0 and w["wrong"] == 0  # weights are never negative
    assert any(d.startswith("noise") for d in fusion.dropped)
    assert any(d.startswith("wrong") for d in fusion.dropped)
    # the second term earns its place: held-out loss without it is worse than with everything
    assert fusion.cv_log_loss["without_second"] > fusion.cv_log_loss["all"]
    assert fusion.trials == {"genuine": 300, "impostor": 3000}


def test_fused_score_is_a_log_likelihood_ratio_at_equal_priors():
    x, y = _trials(seed=1)
    fusion = fit_fusion(x[:, :2], y, ["embedding", "second"])
    s = fusion.score(x[:, :2])
    # for these Gaussians the true LLR is 3*e - 4.5 + 1.5*s2 - 1.125: compare on fresh trials
    fresh, labels = _trials(seed=2)
    truth = 3 * fresh[:, 0] - 4.5 + 1.5 * fresh[:, 1] - 1.125
    fitted = fusion.score(fresh[:, :2])
    assert np.corrcoef(truth, fitted)[0, 1] > 0.99
    # same scale and offset where decisions are made (|LLR| < 3), within fit noise
    near = np.abs(truth) < 3
    assert abs(np.median((fitted - truth)[near])) < 0.3
    assert s[y == 1].mean() > 0 > s[y == 0].mean()
    # fusion with the second term beats the embedding alone on fresh trials (lower error at EER)
    alone = fit_fusion(x[:, :1], y, ["embedding"]).score(fresh[:, :1])

    def misses_at_fmr(score, fmr=0.01):
        t = np.quantile(score[labels == 0], 1 - fmr)
        return float((score[labels == 1] < t).mean())

    assert misses_at_fmr(fitted) < misses_at_fmr(alone)


def test_contributions_add_up_and_the_fusion_round_trips():
    x, y = _trials(seed=3)
    fusion = fit_fusion(x, y, ["embedding", "second", "noise", "wrong"])
    parts = fusion.contributions(x[0])
    assert sum(parts.values()) == pytest.approx(float(fusion.score(x[:1])[0]))
    assert parts["noise"] == 0.0
    again = Fusion.from_dict(fusion.to_dict())
    assert np.allclose(again.score(x), fusion.score(x))


def test_bad_trials_are_refused():
    x, y = _trials()
    with pytest.raises(ValueError, match="features must be"):
        fit_fusion(x, y, ["embedding", "second"])
    with pytest.raises(ValueError, match="at least 2 genuine"):
        fit_fusion(x[y == 0], y[y == 0], ["embedding", "second", "noise", "wrong"])
    bad = x.copy()
    bad[0, 1] = np.inf
    with pytest.raises(ValueError, match="finite"):
        fit_fusion(bad, y, ["embedding", "second", "noise", "wrong"])
