"""Synthesized samples are measured with the face pipeline: identity, diversity, collapse."""

import numpy as np
import pytest

from enroll import assess_samples, enroll_frames, read_photos
from gan import TrainConfig, interpolate, train_person_gan


def test_the_persons_own_crops_verify_and_are_not_collapsed(enrolled, pipeline):
    result = assess_samples(enrolled.crops_gan, enrolled.embeddings, pipeline, pipeline.settings)
    assert result.identity_rate == 1.0  # measured: worst median distance 0.57 against 0.6
    assert result.diversity == pytest.approx(result.real_diversity, rel=0.15)
    assert not result.collapsed


def test_other_peoples_faces_do_not_verify_as_the_person(enrolled, pipeline, data):
    others = []
    for person in ("ben_afflek", "madonna", "elton_john"):
        folder = data / "celeb5_faces" / "train" / person
        others.append(
            enroll_frames(read_photos(folder), person, pipeline, pipeline.settings).crops_gan
        )
    result = assess_samples(
        np.concatenate(others), enrolled.embeddings, pipeline, pipeline.settings
    )
    assert len(result.passed) >= 30
    assert result.identity_rate == 0.0
    assert result.median_distance.min() > 0.6


def test_copies_of_one_face_are_flagged_as_collapse(enrolled, pipeline):
    copies = np.repeat(enrolled.crops_gan[:1], 16, axis=0)
    result = assess_samples(copies, enrolled.embeddings, pipeline, pipeline.settings)
    assert result.diversity < 1e-6 and result.collapsed
    assert result.summary()["collapsed"] is True


@pytest.mark.slow
def test_interpolated_gan_samples_keep_the_identity(enrolled, pipeline):
    # about 50 s on a 2-core CPU; measured 94% identity after 150 steps
    trained = train_person_gan(enrolled.crops_gan, TrainConfig(steps=150))
    result = assess_samples(
        interpolate(trained, enrolled.crops_gan, 64),
        enrolled.embeddings,
        pipeline,
        pipeline.settings,
    )
    assert result.identity_rate >= 0.8 and not result.collapsed
