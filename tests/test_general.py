"""The general discriminator: is this a genuine camera capture of a live face? Trained on real
crops against a personal generator's samples and simulated presentation attacks; measured on
held-out crops, on faces it never saw and on a real phone-screen replay."""

import cv2
import numpy as np
import pytest
import torch

from facegate.metrics import roc_auc
from gan import interpolate, sample_prior
from gan.general import ATTACKS, GeneralConfig, simulate_attacks, train_general
from gan.verifier import CalibratedDiscriminator
from recognize import face_distance

CFG = GeneralConfig(steps=250, incremental_steps=60)


def _generated(gan, crops: np.ndarray, seed: int) -> np.ndarray:
    return np.concatenate(
        [interpolate(gan, crops, 96, seed=seed), sample_prior(gan, 32, seed=seed + 1)]
    )


@pytest.fixture(scope="module")
def general(enrolled, other_people, short_gan):
    real = np.concatenate([enrolled.crops_gan, other_people.crops])
    generated = _generated(short_gan, enrolled.crops_gan, seed=1)
    return train_general(real, generated, CFG)


def _score(model: CalibratedDiscriminator, crops: np.ndarray) -> np.ndarray:
    return model.probability(crops)


def test_held_out_real_crops_score_above_held_out_generated_samples(general):
    model, report = general
    # every 4th real crop and sample was held out of training
    assert report.held_out_real >= 20 and report.held_out_generated == 32
    # measured 1.0 at this budget and at the default (400 steps on a 150-step GAN)
    assert report.auc_generated >= 0.95
    assert set(report.auc_attacks) == set(ATTACKS)
    assert not report.incremental and report.steps == CFG.steps


def test_faces_it_never_saw_pass_and_fresh_samples_do_not(general, strangers, short_gan, enrolled):
    model, _ = general
    real = _score(model, strangers.crops)  # CelebA photos of 30 people it was never shown
    fresh = _score(model, interpolate(short_gan, enrolled.crops_gan, 64, seed=99))
    assert roc_auc(real, fresh) >= 0.95
    assert np.median(real) > 0.5 > np.median(fresh)


def test_a_real_phone_replay_of_the_enrolled_person_scores_below_their_live_frames(
    general, enrolled, replay_crops, pipeline
):
    model, _ = general
    # the replay shows the enrolled person well enough for the embedding alone to accept it
    size = pipeline.embedder.input_px
    replay = pipeline.embed([cv2.resize(c, (size, size)) for c in replay_crops])
    assert np.median(face_distance(replay, enrolled.embeddings)) < 0.6
    # the general discriminator never saw a replay; it saw screen simulations.
    # Measured 1.0 here and at the default budget.
    live = _score(model, enrolled.crops_gan[3::4])  # held out of its training
    assert roc_auc(live, _score(model, replay_crops)) >= 0.9


def test_incremental_training_goes_on_from_the_current_model(
    general, enrolled, other_people, short_gan
):
    model, _ = general
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # after an enrollment: everyone's crops again, fresh samples
    real = np.concatenate([other_people.crops, enrolled.crops_gan])
    generated = _generated(short_gan, enrolled.crops_gan, seed=7)
    updated, report = train_general(real, generated, CFG, start=model)
    assert report.incremental and report.steps == CFG.incremental_steps
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not torch.equal(updated.discriminator.main[0].weight, model.discriminator.main[0].weight)
    assert report.auc_generated >= 0.95


def test_training_is_deterministic(enrolled, short_gan):
    generated = _generated(short_gan, enrolled.crops_gan, seed=5)
    cfg = GeneralConfig(steps=3)
    first, _ = train_general(enrolled.crops_gan, generated, cfg)
    second, _ = train_general(enrolled.crops_gan, generated, cfg)
    assert np.array_equal(
        first.probability(enrolled.crops_gan), second.probability(enrolled.crops_gan)
    )


@pytest.mark.parametrize("kind", ATTACKS)
def test_each_attack_simulation_changes_the_face_reproducibly(enrolled, kind):
    crops = enrolled.crops_gan[:8]
    attacked = simulate_attacks(crops, kind, seed=1)
    assert attacked.shape == crops.shape and attacked.dtype == np.uint8
    change = np.abs(attacked.astype(int) - crops.astype(int)).mean(axis=(1, 2, 3))
    assert (change > 2).all(), change  # grey levels out of 255, every crop
    assert np.array_equal(attacked, simulate_attacks(crops, kind, seed=1))
    assert not np.array_equal(attacked, simulate_attacks(crops, kind, seed=2))


def test_bad_inputs_are_refused(enrolled):
    with pytest.raises(ValueError, match="unknown attack 'photo'"):
        simulate_attacks(enrolled.crops_gan, "photo")
    with pytest.raises(ValueError, match="at least 8 real crops and 8 generated"):
        train_general(enrolled.crops_gan, enrolled.crops_gan[:3])
