"""Enrollment's second half on real faces: the person's GAN, their identity-checked samples and
their personal discriminator stored with them; other persons' generators lending negatives; the
general discriminator trained and then brought up to date. Test-sized budgets throughout."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from sqlalchemy import func, select

from db import Store, upgrade
from db.engine import make_engine, sqlite_url
from db.models import FaceSample
from enroll import enroll
from enroll.personal import other_persons_samples, store_enrollment, train_personal_models
from facegate.errors import TooFewFacesForModelsError
from facegate.metrics import roc_auc
from gan.stored import StoredGenerator, generator_to_bytes
from gan.train import NOISE_STD
from gan.verifier import CalibratedDiscriminator


@pytest.fixture
def small(settings):
    return settings.model_copy(
        update={
            "gan_steps": 30,
            "verifier_steps": 80,
            "general_steps": 60,
            "general_incremental_steps": 20,
        }
    )


@pytest.fixture
def store(small):
    upgrade(make_engine(sqlite_url(small.data_dir)))
    s = Store(small)
    yield s
    s.close()


@pytest.fixture(scope="module")
def ben(data, pipeline):
    return enroll(
        "Ben", photos=data / "celeb5_faces" / "train" / "ben_afflek", settings=pipeline.settings
    )


def test_two_enrollments_store_their_models_and_share_the_general_discriminator(
    store, small, enrolled, ben, pipeline, strangers
):
    first, models = store_enrollment(store, enrolled, pipeline, small)
    kept_first = models["synthetic_kept"]
    # a clip's GAN trains gan_steps; a photo folder's (Ben, below) gan_photo_steps_factor times it,
    # and its samples pair near neighbours only, with less latent noise
    assert models["gan_steps"] == 30 and models["samples"]["samples"] == small.gan_samples
    assert models["discriminator_bytes"] <= 1_000_000
    general = models["general_discriminator"]
    assert general["incremental"] is False and general["steps"] == 60

    # the stored personal discriminator is the trained one: it tells the person from strangers
    verifier = CalibratedDiscriminator.from_bytes(store.artifact(first, "personal_discriminator"))
    own = verifier.probability(enrolled.crops_gan[3::4])  # held out of its training
    assert roc_auc(own, verifier.probability(strangers.crops)) >= 0.8
    # the stored generator decodes new samples of the person
    samples = StoredGenerator.from_bytes(store.artifact(first, "generator")).samples(8)
    assert samples.shape == (8, 64, 64, 3) and samples.std() > 10

    # a second person: the first one's generator lends negatives; the general model goes on
    others, owners = other_persons_samples(store, small)
    assert len(others) == small.verifier_samples_per_other and set(owners) == {first}
    second, models = store_enrollment(store, ben, pipeline, small)
    assert models["gan_steps"] == round(30 * small.gan_photo_steps_factor) == 60
    stored = StoredGenerator.from_bytes(store.artifact(second, "generator"))
    assert stored.neighbours == small.gan_photo_neighbours == 2  # near neighbours only
    assert stored.noise_std == small.gan_photo_noise_std == 0.15
    clip = StoredGenerator.from_bytes(store.artifact(first, "generator"))
    assert clip.neighbours == 0 and clip.noise_std == NOISE_STD == 0.3
    verifier = models["personal_discriminator"]
    assert verifier["train_negatives"] + verifier["held_out_negatives"] == 100 + len(others)
    general = models["general_discriminator"]
    assert general["incremental"] is True and general["steps"] == 20

    check = store.check()
    # per person: generator, personal discriminator, real crops; and the general discriminator
    assert check.clean and check.persons == 2 and check.artifacts == 7
    assert synthetic_count(store, first) == kept_first
    assert synthetic_count(store, second) == models["synthetic_kept"]


def synthetic_count(store: Store, person_id: int) -> int:
    with store.sessions() as session:
        return session.scalar(
            select(func.count(FaceSample.id)).where(
                FaceSample.person_id == person_id, FaceSample.source == "synthetic"
            )
        )


def test_too_few_faces_are_refused_before_any_training(enrolled, pipeline, small):
    few = replace(enrolled, crops_gan=enrolled.crops_gan[:5])
    with pytest.raises(TooFewFacesForModelsError, match="gave 5 usable faces.*at least 8"):
        train_personal_models(few, pipeline, small)


def test_latent_pairs_keep_to_near_neighbours_when_asked():
    from gan.train import latent_pairs

    mu = torch.tensor([[0.0], [1.0], [10.0], [11.5], [30.0], [32.0]])  # three far-apart pairs
    partner = torch.tensor([1, 0, 3, 2, 5, 4])
    i, j = latent_pairs(mu, 200, torch.Generator().manual_seed(0), neighbours=1)
    assert torch.equal(j, partner[i])
    i, j = latent_pairs(mu, 200, torch.Generator().manual_seed(0), neighbours=0)
    assert (j != partner[i]).float().mean() > 0.5  # any two: mostly far apart
    i, j = latent_pairs(mu, 200, torch.Generator().manual_seed(0), neighbours=2)
    two_nearest = {0: {1, 2}, 1: {0, 2}, 2: {3, 1}, 3: {2, 1}, 4: {5, 3}, 5: {4, 3}}
    assert all(int(b) in two_nearest[int(a)] for a, b in zip(i, j, strict=True))
    assert {int(b) for a, b in zip(i, j, strict=True) if a == 4} == {5, 3}  # both are used


def test_a_stored_generator_round_trips(short_gan, enrolled):
    import io

    data = generator_to_bytes(short_gan, enrolled.crops_gan, neighbours=3, noise_std=0.0)
    quiet = StoredGenerator.from_bytes(data)
    assert quiet.neighbours == 3 and quiet.noise_std == 0.0
    # an artifact written before the pairing and the noise were kept reads as "any two", 0.3
    saved = torch.load(io.BytesIO(data), weights_only=True)
    del saved["neighbours"], saved["noise_std"]
    older = io.BytesIO()
    torch.save(saved, older)
    older = StoredGenerator.from_bytes(older.getvalue())
    assert older.neighbours == 0 and older.noise_std == NOISE_STD
    # the noise is used: the same interpolations without it differ from those with it
    noisy = StoredGenerator(quiet.generator, quiet.latents, 3, NOISE_STD)
    assert np.abs(noisy.samples(4, seed=1).astype(int) - quiet.samples(4, seed=1)).mean() > 1
    data = generator_to_bytes(short_gan, enrolled.crops_gan)
    stored = StoredGenerator.from_bytes(data)
    assert stored.latents.shape == (len(enrolled.crops_gan), short_gan.net.nz)
    a, b = stored.samples(4, seed=1), stored.samples(4, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, stored.samples(4, seed=2))
    assert stored.prior(3).shape == (3, 64, 64, 3)


def test_an_impostor_bank_folder_without_faces_is_a_configuration_error(tmp_path, pipeline):
    import cv2
    import skimage.data

    from enroll.impostors import impostor_bank
    from facegate.errors import ConfigurationError

    cv2.imwrite(str(tmp_path / "cup.jpg"), cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR))
    settings = pipeline.settings.model_copy(
        update={"impostor_bank_dir": tmp_path, "data_dir": tmp_path / "data"}
    )
    with pytest.raises(ConfigurationError, match="IMPOSTOR_BANK_DIR .* no face found in 1 photos"):
        impostor_bank(settings, pipeline)
