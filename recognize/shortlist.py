"""The shortlist: the enrolled persons nearest to a query face, from the FAISS index, with their
stored samples' distances (the embedder's own metric; real and GAN samples apart) for the fusion
that follows."""

from dataclasses import dataclass

import numpy as np

from db import Store
from recognize.pipeline import face_distance


@dataclass(frozen=True, eq=False)
class Candidate:
    person_id: int
    display_name: str
    template_similarity: float  # cosine to the person's template, from the index
    nearest_distance: float  # to the person's nearest real sample, in the embedder's metric
    real_distances: np.ndarray | None = None  # to each of the person's real samples
    synthetic_distances: np.ndarray | None = None  # to each kept GAN sample (None: none stored)


def shortlist(store: Store, embedder: str, vector: np.ndarray, k: int = 10) -> list[Candidate]:
    """Up to k candidates, nearest sample first."""
    similarities, ids = store.index(embedder).search(vector, k)
    found = [(int(i), float(s)) for i, s in zip(ids[0], similarities[0], strict=True) if i >= 0]
    if not found:
        return []
    person_ids = [i for i, _ in found]
    samples = store.samples(person_ids, embedder)
    synthetic = store.samples(person_ids, embedder, source="synthetic")
    names = store.display_names(person_ids)
    candidates = []
    for i, s in found:
        if i not in samples:
            continue
        real = face_distance(vector, samples[i])[0]
        syn = face_distance(vector, synthetic[i])[0] if i in synthetic else None
        candidates.append(Candidate(i, names.get(i, "?"), s, float(real.min()), real, syn))
    return sorted(candidates, key=lambda c: c.nearest_distance)
