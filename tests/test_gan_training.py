"""Training a personal GAN on real crops with a test-sized budget: it learns, it is reproducible,
and an interrupted run resumes to the same model."""

import cv2
import numpy as np
import pytest
import torch

from gan import TrainConfig, interpolate, sample_grid_png, sample_prior, train_person_gan

SMALL = {"batch_size": 16, "checkpoint_every": 3}


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_a_short_training_learns_to_reconstruct_and_produces_samples(enrolled):
    calls = []
    trained = train_person_gan(
        enrolled.crops_gan,
        TrainConfig(steps=30, **SMALL),
        progress=lambda s, n, _: calls.append((s, n)),
    )
    assert calls == [(s, 30) for s in range(1, 31)]
    recon = trained.curves["recon"]
    assert len(recon) == 30 and all(np.isfinite(v) for c in trained.curves.values() for v in c)
    # L1 in [-1, 1] units: from random (about 0.5) to well under that within 30 steps
    assert np.mean(recon[-5:]) < 0.6 * np.mean(recon[:5])
    for samples in (interpolate(trained, enrolled.crops_gan, 16), sample_prior(trained, 16)):
        assert samples.shape == (16, 64, 64, 3) and samples.dtype == np.uint8
        assert samples.std() > 10  # not a blank image
        assert np.abs(samples[0].astype(int) - samples[1].astype(int)).mean() > 1  # not one image
    grid = cv2.imdecode(
        np.frombuffer(sample_grid_png(interpolate(trained, enrolled.crops_gan, 16)), np.uint8), 1
    )
    assert grid.shape == (2 * 66 + 2, 8 * 66 + 2, 3)


def test_training_is_reproducible_under_a_seed(enrolled):
    first = train_person_gan(enrolled.crops_gan, TrainConfig(steps=4, seed=3, **SMALL))
    second = train_person_gan(enrolled.crops_gan, TrainConfig(steps=4, seed=3, **SMALL))
    other = train_person_gan(enrolled.crops_gan, TrainConfig(steps=4, seed=4, **SMALL))
    assert same_weights(first.generator, second.generator)
    assert same_weights(first.discriminator, second.discriminator)
    assert first.curves == second.curves
    assert not same_weights(first.generator, other.generator)


def test_an_interrupted_training_resumes_to_the_same_model(enrolled, tmp_path):
    whole = train_person_gan(enrolled.crops_gan, TrainConfig(steps=9, **SMALL))
    checkpoint = tmp_path / "gan.ckpt"
    train_person_gan(
        enrolled.crops_gan, TrainConfig(steps=6, **SMALL), checkpoint=checkpoint
    )  # "interrupted"
    assert checkpoint.is_file()
    steps_seen = []
    resumed = train_person_gan(
        enrolled.crops_gan,
        TrainConfig(steps=9, **SMALL),
        checkpoint=checkpoint,
        progress=lambda s, n, _: steps_seen.append(s),
    )
    assert steps_seen == [7, 8, 9]  # it went on from the checkpoint
    assert resumed.steps_done == 9 and len(resumed.curves["recon"]) == 9
    for a, b in (
        (whole.generator, resumed.generator),
        (whole.encoder, resumed.encoder),
        (whole.discriminator, resumed.discriminator),
    ):
        assert same_weights(a, b)


@pytest.mark.parametrize("loss", ["nonsat", "wgan-gp"])
def test_both_losses_train(enrolled, loss):
    trained = train_person_gan(enrolled.crops_gan, TrainConfig(steps=3, loss=loss, **SMALL))
    assert all(np.isfinite(v) for c in trained.curves.values() for v in c)
