"""The presentation-attack checks (recognize/authenticity.py): the spectrum features, the
synthetic-face check on real crops against a real personal generator's samples, and the
calibration of the thresholds on bona fide captures."""

import numpy as np
import pytest
import torch

from gan.stored import StoredGenerator, generator_to_bytes
from recognize.authenticity import (
    GENERAL_SHARE,
    SPECTRUM_BINS,
    Authenticity,
    calibrate_authenticity,
    fit_synthetic_check,
    spectrum_features,
    spectrum_torch,
)


def test_the_spectrum_features_in_numpy_and_torch_agree_and_carry_gradients():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    f = spectrum_features(crops)
    assert f.shape == (3, SPECTRUM_BINS)
    # ring 1 by hand: the mean log magnitude of the 8 frequencies at integer radius 1 from the
    # centre of the shifted spectrum
    grey = crops[0].astype(np.float64).mean(2)
    mag = np.fft.fftshift(np.abs(np.fft.fft2(grey - grey.mean())))
    yy, xx = np.mgrid[0:64, 0:64]
    ring = np.hypot(yy - 32, xx - 32).astype(int) == 1
    assert f[0, 0] == pytest.approx(np.log(mag[ring] + 0.1).mean(), rel=1e-9)
    # a smoother image has less energy in the outer rings
    smooth = np.repeat(np.repeat(crops[:, ::4, ::4], 4, 1), 4, 2)
    assert (spectrum_features(smooth)[:, -8:] < f[:, -8:]).all()
    x = torch.from_numpy(crops.astype(np.float64)).permute(0, 3, 1, 2).requires_grad_(True)
    spectrum_torch(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="64, 64"):
        spectrum_features(np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="crops"):
        spectrum_features(np.zeros((64, 64, 3), np.uint8))


def test_the_synthetic_face_check_stops_fresh_samples_and_passes_unseen_faces(
    enrolled, short_gan, strangers
):
    generator = StoredGenerator.from_bytes(generator_to_bytes(short_gan, enrolled.crops_gan))
    real = enrolled.crops_gan
    check = fit_synthetic_check(real, generator.samples(128, seed=1))
    assert check.trials == {"real": len(real), "generated": 128}
    # bona fide faces from cameras it never saw: half set the threshold (2%), half are judged
    half = strangers.identity % 2 == 0
    bona = check.score(strangers.crops)
    found = calibrate_authenticity(np.ones(int(half.sum())), bona[half], check, 0.02, 0.4)
    assert found.rejected["synthetic"] <= 0.02 * (1 - GENERAL_SHARE)
    assert (bona[~half] < found.synthetic_threshold).mean() <= 0.1
    fresh = check.score(generator.samples(64, seed=99))  # latents it was never fitted on
    assert (fresh < found.synthetic_threshold).mean() >= 0.95
    # the score in torch is the same number, so the white-box attacks ascend the real thing
    x = torch.from_numpy(real[:4].astype(np.float64)).permute(0, 3, 1, 2)
    assert check.score_torch(x).numpy() == pytest.approx(check.score(real[:4]), rel=1e-6)
    with pytest.raises(ValueError, match="at least 8 real crops"):
        fit_synthetic_check(real[:3], generator.samples(16))


def test_calibration_keeps_the_rejection_budget_and_the_setting_as_a_ceiling():
    rng = np.random.default_rng(1)
    live = rng.beta(8, 2, 500)  # most bona fide captures look live
    synthetic = rng.normal(3.0, 1.0, 500)
    check = fit_synthetic_check(
        rng.integers(100, 200, (16, 64, 64, 3), dtype=np.uint8),
        rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8),
    )
    for budget in (0.02, 0.1):
        found = calibrate_authenticity(live, synthetic, check, budget, 0.99)
        assert (live < found.general_threshold).mean() <= budget * GENERAL_SHARE
        assert (synthetic < found.synthetic_threshold).mean() <= budget * (1 - GENERAL_SHARE)
        margin = found.margin(live, synthetic)
        assert (margin < 0).mean() == pytest.approx(found.rejected["either"])
        assert found.rejected["either"] <= budget
        both = (live >= found.general_threshold) & (synthetic >= found.synthetic_threshold)
        assert ((margin >= 0) == both).all()
        again = Authenticity.from_dict(found.to_dict())
        assert again == found and again.synthetic_check().weights == check.weights
    # the setting is a ceiling: a calibration never makes the general discriminator stricter
    assert calibrate_authenticity(live, synthetic, check, 0.5, 0.3).general_threshold == 0.3
    # without a check the general discriminator has the whole budget
    alone = calibrate_authenticity(live, None, None, 0.1, 0.99)
    assert alone.synthetic is None and 0.07 <= alone.rejected["general"] <= 0.1
    assert (alone.margin(live, None) < 0).mean() == pytest.approx(alone.rejected["general"])
    # the enrollment cameras' crops score lower (a video's frames): the threshold keeps within
    # the share on them too
    enrolled = synthetic[:40] - 1.5
    both = calibrate_authenticity(live, synthetic, check, 0.1, 0.99, enrolled_synthetic=enrolled)
    assert both.synthetic_threshold < found.synthetic_threshold
    assert (enrolled < both.synthetic_threshold).mean() <= 0.1 * (1 - GENERAL_SHARE)
    assert both.rejected["synthetic_enrolled"] == (enrolled < both.synthetic_threshold).mean()
    assert "of 40 enrolled persons' real crops" in both.notes[-1]
    with pytest.raises(ValueError, match="at least 20"):
        calibrate_authenticity(live[:10], synthetic[:10], check, 0.02, 0.4)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        calibrate_authenticity(live, synthetic, check, 0.0, 0.4)
