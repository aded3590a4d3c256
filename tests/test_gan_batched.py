"""Training several persons' GANs at once gives each the model training them alone gives."""

import numpy as np
import pytest
import torch

from gan import TrainConfig, train_person_gan
from gan.batched import train_person_gans

CFG = TrainConfig(steps=4, batch_size=8)


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def _weights(trained) -> torch.Tensor:
    return torch.cat(
        [
            t.flatten()
            for m in (trained.generator, trained.encoder, trained.discriminator)
            for t in m.state_dict().values()
            if t.is_floating_point()
        ]
    )


def test_batched_training_is_one_person_at_a_time_in_float64(enrolled, float64):
    # In float64 the rounding noise of the vmapped (grouped) convolutions stays far below Adam's
    # epsilon, so every weight must agree.
    crops = [enrolled.crops_gan[:20], enrolled.crops_gan[20:]]  # two "persons", different data
    batched = train_person_gans(crops, CFG)
    alone = [train_person_gan(c, CFG) for c in crops]
    for b, a in zip(batched, alone, strict=True):
        assert float((_weights(a) - _weights(b)).abs().max()) < 1e-9
        assert np.allclose(b.curves["d"], a.curves["d"], rtol=0, atol=1e-9)
    assert not torch.equal(_weights(batched[0]), _weights(batched[1]))


def test_batched_training_starts_like_one_person_at_a_time_in_float32(enrolled):
    # Only the first step is compared in float32. Both runs start from the same weights and data,
    # so their first losses differ only by the summation order of the grouped convolutions:
    # float32's 1.2e-7 relative rounding over sums of a few thousand terms is below 1e-4. After
    # that, a gradient that is rounding noise in both runs can make Adam step either way (its
    # first steps move a weight by about lr whatever the gradient's size), so how far the later
    # losses drift apart depends on the CPU's kernels and thread count (issue 18: 2% held with
    # one thread, not with two). Exact agreement of whole runs is the float64 test's to show.
    crops = [enrolled.crops_gan[:20], enrolled.crops_gan[20:]]
    batched = train_person_gans(crops, CFG)
    alone = [train_person_gan(c, CFG) for c in crops]
    for b, a in zip(batched, alone, strict=True):
        assert set(b.curves) == set(a.curves)
        for key in a.curves:
            assert len(b.curves[key]) == len(a.curves[key]) == CFG.steps, key
            assert np.isfinite(b.curves[key]).all(), key
            assert b.curves[key][0] == pytest.approx(a.curves[key][0], rel=1e-4, abs=1e-5), key
        assert _weights(b).dtype == torch.float32
    # each person trained on their own data
    assert batched[0].curves["recon"][0] != pytest.approx(batched[1].curves["recon"][0], rel=1e-3)


def test_batched_training_refuses_wgan_gp(enrolled):
    with pytest.raises(ValueError, match="non-saturating"):
        train_person_gans([enrolled.crops_gan], TrainConfig(steps=1, loss="wgan-gp"))
