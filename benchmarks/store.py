"""Benchmark of the store: enrollment commit time, index build time, top-10 search latency (exact
and IVF), IVF recall@10 and database size per person, at several sizes and both embedder widths.
Prints numbers; asserts nothing. Run: .venv/bin/python benchmarks/store.py [--sizes 1000 10000]

Vectors are synthetic (a random centre per person plus per-sample noise): storage and search cost
do not depend on what the vectors show. The first N persons are bulk-loaded with the same rows
`add_person` writes; enrollment commits are then timed through `Store.add_person` itself, each
with its samples and two artifacts (1 MB and 256 KB, the personal models' budget).
"""

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import insert, update

from db import ArtifactIn, SampleIn, Store, upgrade
from db.engine import make_engine
from db.index import VectorIndex
from db.models import FaceSample, Person, StoreState
from facegate.settings import Settings


def person_samples(rng: np.random.Generator, centres: np.ndarray, samples: int) -> np.ndarray:
    """(n, samples, dim) float32: each person's centre plus per-sample noise."""
    noise = rng.standard_normal(size=(len(centres), samples, centres.shape[1]), dtype=np.float32)
    return centres[:, None, :] + 0.35 * noise


def bulk_load(
    store: Store,
    rng: np.random.Generator,
    centres: np.ndarray,
    samples: int,
    embedder: str,
    batch: int = 2000,
) -> None:
    """Insert persons and samples in batches (generated per batch: 100k x 40 x 512 floats at once
    would not fit in memory)."""
    n, dim = centres.shape
    with store.engine.begin() as conn:
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            vectors = person_samples(rng, centres[start:stop], samples)
            conn.execute(
                insert(Person),
                [{"id": i + 1, "display_name": f"person {i + 1}"} for i in range(start, stop)],
            )
            conn.execute(
                insert(FaceSample),
                [
                    {
                        "person_id": i + 1,
                        "embedding": vectors[i - start, j].astype("<f4").tobytes(),
                        "dim": dim,
                        "embedder": embedder,
                        "embedder_version": "bench",
                        "source": "real",
                        "quality": {"sharpness": 120.0, "brightness": 110.0},
                        "yaw_deg": float(j % 60 - 30),
                        "frame_index": j,
                    }
                    for i in range(start, stop)
                    for j in range(samples)
                ],
            )
        conn.execute(update(StoreState).values(version=n))
    if store.engine.dialect.name == "postgresql":  # keep the sequence past the explicit ids
        with store.engine.begin() as conn:
            conn.exec_driver_sql("select setval('persons_id_seq', (select max(id) from persons))")


def percentiles(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
    }


def search_latency(index: VectorIndex, queries: np.ndarray) -> tuple[dict, np.ndarray]:
    found = []
    times = []
    for q in queries:
        t0 = time.perf_counter()
        _, ids = index.search(q[None, :], 10)
        times.append((time.perf_counter() - t0) * 1000)
        found.append(ids[0])
    return percentiles(times), np.array(found)


def run(
    n: int, dim: int, samples: int, url: str | None, workdir: Path, commits: int, queries: int
) -> dict:
    rng = np.random.default_rng(n + dim)
    data_dir = workdir / f"n{n}_d{dim}"
    db_url = url or f"sqlite:///{data_dir / 'facegate.db'}"
    data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(make_engine(db_url))
    settings = Settings(_env_file=None, data_dir=data_dir, index_approximate_above=10**12)
    store = Store(settings, url=db_url)
    embedder = f"bench{dim}"
    centres = rng.standard_normal(size=(n, dim), dtype=np.float32)
    t0 = time.perf_counter()
    bulk_load(store, rng, centres, samples, embedder)
    out: dict = {
        "persons": n,
        "dim": dim,
        "samples_per_person": samples,
        "bulk_load_s": round(time.perf_counter() - t0, 1),
    }

    t0 = time.perf_counter()
    exact = store.rebuild_index(embedder)
    out["index_build_from_db_s"] = round(time.perf_counter() - t0, 2)
    _, ids, templates = store.templates(embedder)
    t0 = time.perf_counter()
    ivf = VectorIndex.build(
        embedder, dim, ids, templates, 0, approximate_above=0, nprobe=settings.index_nprobe
    )
    out["ivf_build_s"] = round(time.perf_counter() - t0, 2)
    out["ivf_lists"] = int(ivf.index.nlist)

    # queries: a new capture of an enrolled person (their centre plus fresh noise)
    who = rng.integers(0, n, size=queries)
    q = centres[who] + 0.35 * rng.standard_normal(size=(queries, dim), dtype=np.float32)
    exact_lat, exact_ids = search_latency(exact, q)
    ivf_lat, ivf_ids = search_latency(ivf, q)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_ids, ivf_ids, strict=True)])
    out["search_exact"] = exact_lat
    out["search_ivf"] = ivf_lat
    out["ivf_recall_at_10"] = round(float(recall), 4)
    out["exact_top1_is_the_person"] = round(float(np.mean(exact_ids[:, 0] == who + 1)), 4)
    out["ivf_top10_holds_the_person"] = round(
        float(np.mean([w + 1 in row for w, row in zip(who, ivf_ids, strict=True)])), 4
    )

    # enrollment commits at this size, through the real code path
    commit_times = []
    for k in range(commits):
        v = person_samples(rng, rng.standard_normal(size=(1, dim), dtype=np.float32), samples)
        new_samples = [SampleIn(v[0, j]) for j in range(samples)]
        artifacts = [
            ArtifactIn("personal_discriminator", "bench", rng.bytes(1 << 20)),
            ArtifactIn("generator", "bench", rng.bytes(1 << 18)),
        ]
        t0 = time.perf_counter()
        store.add_person(f"new {k}", embedder, "bench", new_samples, artifacts)
        commit_times.append((time.perf_counter() - t0) * 1000)
    out["enroll_commit"] = percentiles(commit_times)

    if db_url.startswith("sqlite"):
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        size = (data_dir / "facegate.db").stat().st_size
    else:
        with store.engine.connect() as conn:
            size = conn.exec_driver_sql("select pg_database_size(current_database())").scalar()
    out["db_bytes_per_person"] = int(size / (n + commits))
    shutil.rmtree(data_dir / "artifacts", ignore_errors=True)
    out["index_file_bytes"] = (data_dir / "index" / f"{embedder}.faiss").stat().st_size
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    parser.add_argument(
        "--samples", type=int, default=40, help="samples per person (enrollment keeps 40)"
    )
    parser.add_argument(
        "--commits", type=int, default=30, help="timed enrollments per configuration"
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--url", help="a database URL instead of a fresh SQLite file (must be empty)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where to build the stores (default: a temp folder)"
    )
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)  # a door query is one search; measure it single-threaded
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="facegate-bench-"))
    results = []
    for n in args.sizes:
        for dim in args.dims:
            result = run(n, dim, args.samples, args.url, workdir, args.commits, args.queries)
            results.append(result)
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
