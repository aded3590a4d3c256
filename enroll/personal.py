"""The second half of enrollment: the person's GAN, their identity-checked synthetic samples, their
personal discriminator, and the general discriminator brought up to date.

    result (crops, embeddings) -> train the VAE-GAN -> decode interpolations -> keep the samples
    that verify as the person -> fine-tune the GAN's discriminator against the impostor bank and
    other enrolled persons' generator samples -> calibrate -> artifacts for the store

The general discriminator is shared by everyone, so it is updated after the person is stored, from
the current one (update_general_discriminator).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from db import ArtifactIn, SampleIn, Store
from enroll.enrollment import EnrollmentResult
from enroll.impostors import impostor_bank
from enroll.storage import save_enrollment
from enroll.synthesis import SampleAssessment, assess_samples
from facegate.device import resolve_device
from facegate.errors import TooFewFacesForModelsError
from facegate.settings import Settings
from gan import TrainConfig, interpolate, train_person_gan
from gan.dcgan import DCGANConfig, Discriminator, weights_init
from gan.general import GeneralConfig, GeneralReport, train_general
from gan.stored import DISCRIMINATOR_FORMAT, GENERATOR_FORMAT, StoredGenerator, generator_to_bytes
from gan.train import NOISE_STD
from gan.verifier import CalibratedDiscriminator, VerifierConfig, VerifierReport, train_verifier
from recognize import FacePipeline

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    pass


@dataclass
class PersonalModels:
    generator: bytes  # gan/stored.py's format
    discriminator: bytes  # the calibrated personal discriminator
    verifier: VerifierReport
    assessment: SampleAssessment | None  # None without a GAN (the ablation)
    kept: np.ndarray  # (M,) indices of the samples that verify as the person
    gan_steps: int
    seconds: dict[str, float] = field(default_factory=dict)

    def artifacts(self) -> list[ArtifactIn]:
        return [
            ArtifactIn("generator", GENERATOR_FORMAT, self.generator),
            ArtifactIn("personal_discriminator", DISCRIMINATOR_FORMAT, self.discriminator),
        ]

    def synthetic_samples(self) -> list[SampleIn]:
        """The kept samples' embeddings, stored beside the real ones as source 'synthetic'."""
        return [
            SampleIn(embedding=self.assessment.embeddings[i], source="synthetic") for i in self.kept
        ]

    def summary(self) -> dict:
        return {
            "gan_steps": self.gan_steps,
            "samples": self.assessment.summary() if self.assessment else None,
            "synthetic_kept": len(self.kept),
            "personal_discriminator": self.verifier.summary(),
            "generator_bytes": len(self.generator),
            "discriminator_bytes": len(self.discriminator),
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
        }


def other_persons_samples(
    store: Store | None, settings: Settings, exclude: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Samples of up to `verifier_other_persons` enrolled persons' stored generators, with the
    person id of each: (N, 64, 64, 3) uint8 and (N,)."""
    crops, owners = [np.zeros((0, 64, 64, 3), np.uint8)], []
    if store is not None and settings.verifier_other_persons > 0:
        for person_id in store.persons_with("generator", exclude, settings.verifier_other_persons):
            stored = StoredGenerator.from_bytes(store.artifact(person_id, "generator"))
            crops.append(stored.samples(settings.verifier_samples_per_other, seed=person_id))
            owners += [person_id] * settings.verifier_samples_per_other
    return np.concatenate(crops), np.array(owners, dtype=int)


def train_personal_models(
    result: EnrollmentResult,
    pipeline: FacePipeline,
    settings: Settings,
    others: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Progress | None = None,
    with_gan: bool = True,
) -> PersonalModels:
    """Train the person's GAN and personal discriminator from their enrollment. `others`, from
    other_persons_samples, lends other enrolled persons' samples as negatives. `with_gan=False` is
    the ablation the evaluation compares against: no GAN, so the discriminator starts from a fresh
    initialisation and trains without synthetic samples (no generator is made)."""
    progress = progress or _no_progress
    device = resolve_device(settings.device)
    crops = result.crops_gan
    need = 2 * VerifierConfig().holdout_every
    if len(crops) < need:
        raise TooFewFacesForModelsError(
            f"{result.source} gave {len(crops)} usable faces; the personal discriminator needs at "
            f"least {need} (a quarter are held out to calibrate it): use a longer clip or more photos"
        )
    seconds: dict[str, float] = {}

    gan, samples, assessment, kept = None, None, None, np.zeros(0, int)
    # a photo folder varies more than a clip's frames: its GAN trains longer, and its samples
    # interpolate only between near neighbours (the README's benchmark: identity rate)
    photos = result.source_kind == "photos"
    steps = round(settings.gan_steps * (settings.gan_photo_steps_factor if photos else 1.0))
    neighbours = settings.gan_photo_neighbours if photos else 0
    noise = settings.gan_photo_noise_std if photos else NOISE_STD
    if with_gan:
        t0 = time.perf_counter()
        gan = train_person_gan(
            crops,
            TrainConfig(steps=steps),
            device=device,
            progress=lambda step, total, _: progress("personal GAN", step, total),
        )
        seconds["gan"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        samples = interpolate(
            gan, crops, settings.gan_samples, noise_std=noise, seed=1, neighbours=neighbours
        )
        assessment = assess_samples(samples, result.embeddings, pipeline, settings)
        kept = np.flatnonzero(assessment.passed)
        seconds["samples"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bank = impostor_bank(settings, pipeline)
    others, owners = others if others is not None else other_persons_samples(None, settings)
    negatives = np.concatenate([bank, others])
    # every bank face its own identity (they are 100 different people); others by person
    groups = np.concatenate([-1 - np.arange(len(bank)), owners])
    net = gan.net if gan is not None else DCGANConfig()
    start = gan.discriminator if gan is not None else _fresh_discriminator(net)
    verifier, report = train_verifier(
        start,
        net,
        crops,
        negatives,
        synthetic=samples[kept] if samples is not None and len(kept) else None,
        negative_groups=groups,
        config=VerifierConfig(steps=settings.verifier_steps),
        device=device,
        progress=lambda step, total: progress("personal discriminator", step, total),
    )
    seconds["discriminator"] = time.perf_counter() - t0

    return PersonalModels(
        generator=generator_to_bytes(gan, crops, neighbours, noise) if gan is not None else b"",
        discriminator=verifier.to_bytes(),
        verifier=report,
        assessment=assessment,
        kept=kept,
        gan_steps=gan.steps_done if gan is not None else 0,
        seconds=seconds,
    )


def _fresh_discriminator(net: DCGANConfig) -> Discriminator:
    torch.manual_seed(0)
    model = Discriminator(net)
    model.apply(weights_init)
    return model


def update_general_discriminator(
    store: Store,
    settings: Settings,
    crops: np.ndarray,
    person_id: int,
    others: np.ndarray | None = None,
    progress: Progress | None = None,
) -> GeneralReport:
    """Train the general discriminator on the new person's real crops and every enrolled person's
    stored ones against their stored generator's samples, other persons' generator samples and
    attack simulations; from the current one when there is one (incremental), from scratch
    otherwise. Stores the result. `others`: other persons' samples when the caller has them."""
    progress = progress or _no_progress
    device = resolve_device(settings.device)
    stored = StoredGenerator.from_bytes(store.artifact(person_id, "generator"), device)
    if others is None:
        others, _ = other_persons_samples(store, settings, exclude=person_id)
    generated = np.concatenate([stored.samples(64, seed=2), stored.prior(32, seed=3), others])
    # everyone's stored crops beside the new person's: training on the newcomer alone made the
    # model forget earlier cameras (every live frame of the first person called a spoof after
    # six more enrollments)
    crops = np.concatenate([crops, store.real_crops(exclude=person_id)])
    current = store.general_discriminator()
    start = CalibratedDiscriminator.from_bytes(current, device) if current is not None else None
    model, report = train_general(
        crops,
        generated,
        GeneralConfig(
            steps=settings.general_steps, incremental_steps=settings.general_incremental_steps
        ),
        start=start,
        device=device,
        progress=lambda step, total: progress("general discriminator", step, total),
    )
    store.set_general_discriminator(model.to_bytes(), DISCRIMINATOR_FORMAT)
    return report


def store_enrollment(
    store: Store,
    result: EnrollmentResult,
    pipeline: FacePipeline,
    settings: Settings,
    external_id: str | None = None,
    progress: Progress | None = None,
) -> tuple[int, dict]:
    """Train the person's models, store them with the person atomically, then bring the general
    discriminator up to date. The new person's id and what training measured."""
    progress = progress or _no_progress
    others = other_persons_samples(store, settings)  # decoded once, used by both models
    models = train_personal_models(result, pipeline, settings, others, progress)
    person_id = save_enrollment(store, result, external_id=external_id, models=models)
    t0 = time.perf_counter()
    general = update_general_discriminator(
        store, settings, result.crops_gan, person_id, others[0], progress
    )
    summary = models.summary()
    summary["seconds"]["general"] = round(time.perf_counter() - t0, 1)
    summary["general_discriminator"] = general.summary()
    return person_id, summary
