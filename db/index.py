"""The vector index: FAISS over one L2-normalised template per person and embedder.

Exact inner product (`IndexIDMap2` over `IndexFlatIP`) by default; an IVF index above a size set
in the settings. It is always rebuilt from the database, never the only copy, and is persisted
with the database version it reflects so a stale file is noticed and rebuilt.
"""

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np


def normalise(vectors: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


@dataclass
class IndexMeta:
    embedder: str
    dim: int
    kind: str  # flat | ivf
    db_version: int
    count: int
    trained_on: int = 0  # IVF: how many vectors its lists were trained on

    def wanted_kind(self, approximate_above: int) -> str:
        return "ivf" if self.count > approximate_above else "flat"

    def needs_rebuild(self, approximate_above: int) -> bool:
        """The kind no longer suits the size, or an IVF has doubled since its lists were trained."""
        if self.kind != self.wanted_kind(approximate_above):
            return True
        return self.kind == "ivf" and self.count > 2 * self.trained_on


class VectorIndex:
    """Person ids -> unit template vectors; `search` returns cosine similarities, best first."""

    def __init__(self, index: faiss.Index, meta: IndexMeta):
        self.index = index
        self.meta = meta

    @classmethod
    def build(
        cls,
        embedder: str,
        dim: int,
        ids: np.ndarray,
        vectors: np.ndarray,
        db_version: int,
        approximate_above: int,
        nprobe: int = 16,
    ) -> "VectorIndex":
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = normalise(vectors) if len(ids) else np.zeros((0, dim), dtype=np.float32)
        if len(ids) > approximate_above:
            # about sqrt(N) lists, and at least 39 training points per list (FAISS's minimum)
            nlist = max(1, min(int(math.sqrt(len(ids))), len(ids) // 39))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.nprobe = nprobe
            index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove and reconstruct by id
            kind = "ivf"
        else:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            kind = "flat"
        if len(ids):
            index.add_with_ids(vectors, ids)
        trained_on = len(ids) if kind == "ivf" else 0
        return cls(index, IndexMeta(embedder, dim, kind, db_version, int(index.ntotal), trained_on))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.remove(ids)  # re-enrolling replaces the template
        self.index.add_with_ids(normalise(vectors), ids)
        self.meta.count = int(self.index.ntotal)

    def remove(self, ids: np.ndarray) -> int:
        removed = int(self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))
        self.meta.count = int(self.index.ntotal)
        return removed

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, person ids), each (n, k); missing entries have id -1."""
        return self.index.search(normalise(vectors), k)

    def ids(self) -> np.ndarray:
        if self.meta.kind == "flat":
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        invlists = self.index.invlists
        found = [
            faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
            for i in range(self.index.nlist)
            if invlists.list_size(i)
        ]
        return np.concatenate(found).astype(np.int64) if found else np.zeros(0, dtype=np.int64)

    def vectors_by_id(self) -> dict[int, np.ndarray]:
        return {int(i): self.index.reconstruct(int(i)) for i in self.ids()}

    # --- persistence -------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write `<embedder>.faiss` and `<embedder>.json` atomically (temp file, then rename)."""
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / self.meta.embedder
        faiss.write_index(self.index, f"{base}.faiss.tmp")
        os.replace(f"{base}.faiss.tmp", f"{base}.faiss")
        Path(f"{base}.json.tmp").write_text(json.dumps(self.meta.__dict__))
        os.replace(f"{base}.json.tmp", f"{base}.json")

    @classmethod
    def load(cls, folder: Path, embedder: str) -> "VectorIndex | None":
        base = folder / embedder
        try:
            meta = IndexMeta(**json.loads(Path(f"{base}.json").read_text()))
            index = faiss.read_index(f"{base}.faiss")
        except (FileNotFoundError, ValueError, TypeError, RuntimeError):
            return None  # absent or unreadable: the caller rebuilds from the database
        if int(index.ntotal) != meta.count:
            return None
        return cls(index, meta)
