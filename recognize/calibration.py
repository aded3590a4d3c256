"""Calibrating the 1-10 security levels: faces of people who will never be enrolled are compared
with every enrolled person through the full fused score, and the level thresholds are read off
those impostor trials (recognize/levels.py). The result is stored; the report shows it."""

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from db import Store
from db.artifacts import real_crops_from_bytes
from facegate.settings import Settings
from gan.stored import StoredGenerator
from gan.train import to_tensor
from gan.verifier import VerifierConfig
from recognize.authenticity import MIN_BONA_FIDE, calibrate_authenticity, fit_synthetic_check
from recognize.fusion import (
    ADAPTIVE_TOP,
    PRODUCT_TERMS,
    candidate_features,
    fit_fusion,
    person_norm,
)
from recognize.levels import (
    DEFAULT_EMBEDDING_PLATT,
    LevelTable,
    calibrate_levels,
    fit_embedding_platt,
)
from recognize.pipeline import FacePipeline, face_distance
from recognize.quality import quality_issue

MIN_GENUINE_PAIRS = 20  # fewer same-identity pairs than this: the embedder's default fit is used
MIN_FUSION_GENUINE = 10  # fewer genuine trials than this (one clip gives 10): no fusion is fitted
FUSION_FOLDS = 5


@dataclass
class FaceSet:
    """The largest face of each photo: its embedding, its 64 px crop and whose it is."""

    embeddings: np.ndarray  # (N, D)
    crops_64: np.ndarray  # (N, 64, 64, 3) uint8
    identity: np.ndarray  # (N,) labels (str)
    photos: int  # photos read, with or without a face
    crops_embedder: np.ndarray | None = None  # (N, px, px, 3) what was embedded, when kept
    # (N,) the first quality test each face fails at a door ("" when it passes or no gate was given)
    issues: np.ndarray | None = None
    # faces left out by `usable`, by the first quality test they failed
    poor_quality: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.identity)

    def refused(self) -> dict[str, int]:
        """How many faces failed each quality test (none without a gate)."""
        if self.issues is None:
            return {}
        tests, counts = np.unique(self.issues[self.issues != ""].astype(str), return_counts=True)
        return {str(t): int(n) for t, n in zip(tests, counts, strict=True)}

    def usable(self) -> "FaceSet":
        """The faces that pass the quality gate: a door answers poor_quality to the others before
        any model judges them, so they neither calibrate nor probe the models."""
        if self.issues is None:
            return self
        keep = self.issues == ""
        refused = self.refused()
        if not keep.any():
            raise ValueError(
                f"no usable face in {self.photos} photos: all {len(self)} faces found were "
                f"refused by the quality gate {refused}"
            )
        return FaceSet(
            self.embeddings[keep],
            self.crops_64[keep],
            self.identity[keep],
            self.photos,
            None if self.crops_embedder is None else self.crops_embedder[keep],
            self.issues[keep],
            refused,
        )


def face_set(
    photos: Iterable[tuple[np.ndarray, str]],
    pipeline: FacePipeline,
    batch: int = 16,
    keep_embedder_crops: bool = False,
    gate: Settings | None = None,
) -> FaceSet:
    """`photos` are (RGB image, identity label) pairs; photos without a face are left out. With a
    `gate` (a door's quality settings, recognize/quality.py door_gate) each face carries the
    first quality test it fails; `FaceSet.usable` leaves those out."""
    vectors, crops, labels, seen, embedded, issues = [], [], [], 0, [], []
    chunk: list[tuple[np.ndarray, str]] = []

    def flush() -> None:
        faces = pipeline.analyze([image for image, _ in chunk], largest_only=True)
        for (image, label), found in zip(chunk, faces, strict=True):
            if found:
                vectors.append(found[0].embedding)
                crops.append(pipeline.align(image, found[0].detection, 64))
                labels.append(label)
                issues.append(quality_issue(found[0].quality, gate) or "" if gate else "")
                if keep_embedder_crops:
                    embedded.append(found[0].crop)
        chunk.clear()

    for item in photos:
        seen += 1
        chunk.append(item)
        if len(chunk) == batch:
            flush()
    if chunk:
        flush()
    if not labels:
        raise ValueError(f"no face found in {seen} calibration photos")
    kept = np.stack(embedded) if keep_embedder_crops else None
    marked = np.array(issues, dtype=object) if gate else None
    return FaceSet(np.stack(vectors), np.stack(crops), np.array(labels), seen, kept, marked)


def pair_distances(faces: FaceSet) -> tuple[np.ndarray, np.ndarray]:
    """Distances of every same-identity pair and every different-identity pair."""
    d = face_distance(faces.embeddings, faces.embeddings)
    upper = np.triu(np.ones_like(d, dtype=bool), k=1)
    same = faces.identity[:, None] == faces.identity[None, :]
    return d[upper & same], d[upper & ~same]


def embedding_fit(faces: FaceSet, embedder: str) -> tuple[tuple[float, float], str]:
    genuine, impostor = pair_distances(faces)
    if len(genuine) >= MIN_GENUINE_PAIRS:
        return fit_embedding_platt(genuine, impostor), (
            f"fitted on {len(genuine)} genuine and {len(impostor)} impostor pairs"
        )
    if embedder not in DEFAULT_EMBEDDING_PLATT:
        raise ValueError(
            f"the calibration faces hold {len(genuine)} same-identity pairs (need "
            f"{MIN_GENUINE_PAIRS}) and embedder {embedder!r} has no measured default; give "
            "photos in one folder per identity, several photos each"
        )
    return DEFAULT_EMBEDDING_PLATT[embedder], "the embedder's default fit (celeba_wild)"


@dataclass
class Trials:
    """Fusion features (PRODUCT_TERMS) of impostor and genuine trials, with cross-validation
    groups: a never-enrolled identity's faces, or an enrolled person's held-out crops, share one."""

    impostor: np.ndarray  # (I, terms)
    impostor_groups: np.ndarray
    genuine: np.ndarray  # (G, terms)
    genuine_groups: np.ndarray
    genuine_persons: int  # enrolled persons whose stored crops gave genuine trials
    # each trial's person's cohort_norm (mean, deviation) against the calibration faces
    impostor_norm: np.ndarray  # (I, 2)
    genuine_norm: np.ndarray  # (G, 2)

    def normalised(self) -> tuple[np.ndarray, np.ndarray]:
        """(impostor, genuine) with the embedding term normalised by each person's cohort, as
        the recognizer scores a candidate when the table keeps a cohort."""
        col = PRODUCT_TERMS.index("embedding")
        out = []
        for x, norm in ((self.impostor, self.impostor_norm), (self.genuine, self.genuine_norm)):
            x = x.copy()
            x[:, col] = (x[:, col] - norm[:, 0]) / norm[:, 1]
            out.append(x)
        return out[0], out[1]


def held_out(n: int) -> np.ndarray:
    """(n,) bool: the stored real crops a person's personal discriminator and the synthetic-face
    check were not fitted on (every VerifierConfig.holdout_every-th)."""
    every = VerifierConfig().holdout_every
    return np.arange(n) % every == every - 1


def _group(label: str) -> int:
    return zlib.crc32(label.encode()) % FUSION_FOLDS


@torch.no_grad()
def trials(
    store: Store,
    embedder: str,
    faces: FaceSet,
    platt: tuple[float, float],
    personal,  # recognize.discriminators.PersonalDiscriminators
    max_persons: int = 200,
) -> Trials:
    """Impostor trials: every calibration face against every enrolled person (up to
    max_persons). Genuine trials: each enrolled person's stored real crops that their personal
    discriminator held out of training (every `holdout_every`-th), against the rest of their
    samples. The features are as they are; each trial also carries its person's cohort_norm
    against the calibration faces (Trials.normalised applies it)."""
    _, person_ids, _ = store.templates(embedder)
    person_ids = [int(p) for p in person_ids[:max_persons]]
    if not person_ids:
        raise ValueError("nobody is enrolled: enroll people before calibrating the levels")
    real = store.samples(person_ids, embedder)
    synthetic = store.samples(person_ids, embedder, source="synthetic")
    with_models = store.holding("personal_discriminator", person_ids)
    with_crops = store.holding("real_crops", person_ids)
    x = to_tensor(faces.crops_64).to(personal.device)
    face_groups = np.array([_group(str(i)) for i in faces.identity])
    impostor, impostor_groups, genuine, genuine_groups = [], [], [], []
    impostor_norm, genuine_norm = [], []
    persons_with_trials = 0
    for p in person_ids:
        if p not in real:
            continue
        model = personal.get(p) if p in with_models else None
        logit = model(x).float().cpu().numpy() if model is not None else None
        own_synthetic = synthetic.get(p)
        syn = face_distance(faces.embeddings, own_synthetic) if own_synthetic is not None else None
        to_real = face_distance(faces.embeddings, real[p])
        norm = person_norm(to_real, platt)
        impostor.append(candidate_features(to_real, syn, logit, platt))
        impostor_groups.append(face_groups)
        impostor_norm.append(np.tile(norm, (len(to_real), 1)))
        if p not in with_crops:
            continue  # enrolled before crops were kept: no genuine trials of theirs
        crops, vectors = real_crops_from_bytes(store.artifact(p, "real_crops"))
        held = np.flatnonzero(held_out(len(crops)))
        if len(held) == 0 or len(vectors) < 2:
            continue
        persons_with_trials += 1
        own_logit = (
            model(to_tensor(crops[held]).to(personal.device)).float().cpu().numpy()
            if model is not None
            else None
        )
        for j, index in enumerate(held):
            others = np.delete(vectors, index, axis=0)
            syn = (
                face_distance(vectors[index], own_synthetic) if own_synthetic is not None else None
            )
            genuine.append(
                candidate_features(
                    face_distance(vectors[index], others),
                    syn,
                    None if own_logit is None else own_logit[j],
                    platt,
                )
            )
        genuine_groups.append(np.full(len(held), _group(f"person {p}")))
        genuine_norm.append(np.tile(norm, (len(held), 1)))
    terms = len(PRODUCT_TERMS)

    def rows(parts: list[np.ndarray], width: int) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0, width))

    return Trials(
        rows(impostor, terms),
        np.concatenate(impostor_groups) if impostor_groups else np.zeros(0, int),
        rows(genuine, terms),
        np.concatenate(genuine_groups) if genuine_groups else np.zeros(0, int),
        persons_with_trials,
        rows(impostor_norm, 2),
        rows(genuine_norm, 2),
    )


def synthetic_check(store: Store, embedder: str, max_persons: int = 200, per_person: int = 64):
    """The synthetic-face check fitted on the enrolled persons' stored real crops (all but the
    held-out every `holdout_every`-th) against `per_person` samples of each one's generator;
    (check, held-out crops, None) or (None, held-out crops, why not)."""
    _, person_ids, _ = store.templates(embedder)
    person_ids = [int(p) for p in person_ids[:max_persons]]
    with_crops = store.holding("real_crops", person_ids)
    with_generator = store.holding("generator", person_ids)
    real, held, generated = [], [], []
    for p in person_ids:
        if p in with_crops:
            crops = real_crops_from_bytes(store.artifact(p, "real_crops"))[0]
            out = held_out(len(crops))
            real.append(crops[~out])
            held.append(crops[out])
        if p in with_generator:
            stored = StoredGenerator.from_bytes(store.artifact(p, "generator"))
            generated.append(stored.samples(per_person, seed=2))
    try:
        check = fit_synthetic_check(_crops(real), _crops(generated))
    except ValueError as error:
        return None, _crops(held), str(error)
    return check, _crops(held), None


def _crops(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, 64, 64, 3), np.uint8)


def legacy_fused(features: np.ndarray) -> np.ndarray:
    """The sum of the embedding's and the personal discriminator's log-likelihood ratios."""
    return (
        features[:, PRODUCT_TERMS.index("embedding")] + features[:, PRODUCT_TERMS.index("personal")]
    )


def calibrate(
    store: Store,
    embedder: str,
    faces: FaceSet,
    personal,
    source: str,
    max_persons: int = 200,
    general=None,  # the general discriminator (CalibratedDiscriminator)
    authenticity_threshold: float = 0.4,
    fusion: bool = True,
    max_bpcer: float = 0.02,
    general_sha256: str | None = None,
) -> LevelTable:
    """Fit, compute and store the level table for `embedder`; returns it.

    With at least MIN_FUSION_GENUINE genuine trials (enrolled persons' held-out crops), the
    evidence is fused by a logistic regression fitted on the trials with cross-validation
    (recognize/fusion.py); otherwise by the sum of log-likelihood ratios, and the notes say why.
    With `general`, the presentation-attack checks are calibrated on the calibration faces (bona
    fide captures from cameras the models never saw; recognize/authenticity.py): the general
    discriminator's threshold and the synthetic-face check, fitted on the enrolled persons' stored
    crops against their generators' samples."""
    if general is not None and len(faces) < MIN_BONA_FIDE:
        raise ValueError(
            f"the presentation-attack checks need at least {MIN_BONA_FIDE} calibration faces to "
            f"read their thresholds from, got {len(faces)}; give more identities (or photos)"
        )
    platt, how = embedding_fit(faces, embedder)
    found = trials(store, embedder, faces, platt, personal, max_persons)
    notes, extra = [], {}
    if not fusion:
        scores = legacy_fused(found.impostor)
        notes.append("no fusion fitted (asked for the sum of the two log-likelihood ratios)")
    elif len(found.genuine) >= MIN_FUSION_GENUINE:
        impostor, genuine = found.normalised()
        features = np.concatenate([genuine, impostor])
        labels = np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]
        groups = np.concatenate([found.genuine_groups, found.impostor_groups])
        fitted = fit_fusion(features, labels, PRODUCT_TERMS, groups=groups)
        extra["fusion"] = fitted.to_dict()
        extra.update(LevelTable.encode_cohort(faces.embeddings))
        scores = fitted.score(impostor)
        notes.append(
            f"each person's embedding term is normalised by the {len(faces)} calibration faces "
            f"as cohort (the mean and deviation of its highest {ADAPTIVE_TOP:.0%} of scores)"
        )
        notes.append(
            f"fusion fitted on {len(found.genuine)} genuine trials ({found.genuine_persons} "
            f"persons' held-out crops) and {len(found.impostor)} impostor trials; weights "
            + ", ".join(
                f"{t} {w / sc:.3g}"
                for t, w, sc in zip(fitted.terms, fitted.weights, fitted.scale, strict=True)
            )
            + (f"; dropped: {'; '.join(fitted.dropped)}" if fitted.dropped else "")
        )
    else:  # the sum reads the embedding's log-likelihood ratio as it is: no normalisation
        scores = legacy_fused(found.impostor)
        notes.append(
            f"no fusion fitted: {len(found.genuine)} genuine trials (need {MIN_FUSION_GENUINE}; "
            "persons enrolled before crops were kept give none): the fused score is the sum of "
            "the embedding's and the personal discriminator's log-likelihood ratios"
        )
    if general is not None:
        live = general.probability(faces.crops_64)
        notes.append(
            f"the general discriminator answers P(live) < {authenticity_threshold} (the setting) "
            f"for {float((live < authenticity_threshold).mean()):.3f} of the {len(live)} "
            "calibration faces (bona fide captures from cameras it never saw)"
        )
        check, held, why = synthetic_check(store, embedder, max_persons)
        if check is None:
            notes.append(f"no synthetic-face check: {why}")
        found_checks = calibrate_authenticity(
            live,
            None if check is None else check.score(faces.crops_64),
            check,
            max_bpcer,
            authenticity_threshold,
            general_sha256,
            None if check is None else check.score(held),
        )
        extra["authenticity"] = found_checks.to_dict()
        notes.extend(found_checks.notes)
    described = (
        f"{source}: {len(faces)} faces of {len(set(faces.identity))} identities never enrolled; "
        f"embedding fit: {how}"
    )
    table = calibrate_levels(scores, platt, described, notes=notes, **extra)
    store.save_level_table(embedder, table.to_dict(), described, table.impostor_trials)
    return table
