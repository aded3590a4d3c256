"""Calibrating the 1-10 security levels: faces of people who will never be enrolled are compared
with every enrolled person through the full fused score, and the level thresholds are read off
those impostor trials (recognize/levels.py). The result is stored; the report shows it."""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from db import Store
from gan.train import to_tensor
from recognize.levels import (
    DEFAULT_EMBEDDING_PLATT,
    LevelTable,
    calibrate_levels,
    fit_embedding_platt,
    fuse,
)
from recognize.pipeline import FacePipeline, face_distance

MIN_GENUINE_PAIRS = 20  # fewer same-identity pairs than this: the embedder's default fit is used


@dataclass
class FaceSet:
    """The largest face of each photo: its embedding, its 64 px crop and whose it is."""

    embeddings: np.ndarray  # (N, D)
    crops_64: np.ndarray  # (N, 64, 64, 3) uint8
    identity: np.ndarray  # (N,) labels (str)
    photos: int  # photos read, with or without a face
    crops_embedder: np.ndarray | None = None  # (N, px, px, 3) what was embedded, when kept

    def __len__(self) -> int:
        return len(self.identity)


def face_set(
    photos: Iterable[tuple[np.ndarray, str]],
    pipeline: FacePipeline,
    batch: int = 16,
    keep_embedder_crops: bool = False,
) -> FaceSet:
    """`photos` are (RGB image, identity label) pairs; photos without a face are left out."""
    vectors, crops, labels, seen, embedded = [], [], [], 0, []
    chunk: list[tuple[np.ndarray, str]] = []

    def flush() -> None:
        faces = pipeline.analyze([image for image, _ in chunk], largest_only=True)
        for (image, label), found in zip(chunk, faces, strict=True):
            if found:
                vectors.append(found[0].embedding)
                crops.append(pipeline.align(image, found[0].detection, 64))
                labels.append(label)
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
    return FaceSet(np.stack(vectors), np.stack(crops), np.array(labels), seen, kept)


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


@torch.no_grad()
def impostor_scores(
    store: Store,
    embedder: str,
    faces: FaceSet,
    platt: tuple[float, float],
    personal,  # recognize.discriminators.PersonalDiscriminators
    max_persons: int = 200,
) -> np.ndarray:
    """Fused scores of every face against every enrolled person (up to max_persons)."""
    _, person_ids, _ = store.templates(embedder)
    person_ids = [int(p) for p in person_ids[:max_persons]]
    if not person_ids:
        raise ValueError("nobody is enrolled: enroll people before calibrating the levels")
    samples = store.samples(person_ids, embedder)
    with_models = store.holding("personal_discriminator", person_ids)
    x = to_tensor(faces.crops_64).to(personal.device)
    scores = []
    for p in person_ids:
        if p not in samples:
            continue
        distance = face_distance(faces.embeddings, samples[p]).min(1)
        logit = personal.get(p)(x).float().cpu().numpy() if p in with_models else 0.0
        scores.append(fuse(distance, logit, platt))
    return np.concatenate(scores)


def calibrate(
    store: Store, embedder: str, faces: FaceSet, personal, source: str, max_persons: int = 200
) -> LevelTable:
    """Fit, compute and store the level table for `embedder`; returns it."""
    platt, how = embedding_fit(faces, embedder)
    scores = impostor_scores(store, embedder, faces, platt, personal, max_persons)
    described = (
        f"{source}: {len(faces)} faces of {len(set(faces.identity))} identities never enrolled; "
        f"embedding fit: {how}"
    )
    table = calibrate_levels(scores, platt, described)
    store.save_level_table(embedder, table.to_dict(), described, table.impostor_trials)
    return table
