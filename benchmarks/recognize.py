"""Recognition, measured: the embedding-distance fit behind DEFAULT_EMBEDDING_PLATT, per-stage
latency and end-to-end p50/p99 for a 640x480 frame with 1k and 10k enrolled persons, the batched
personal-discriminator stage for k = 1, 8, 32 against k separate calls, and open-set accuracy
(FNIR at FPIR = 1e-2) on celeba_wild. Prints numbers; asserts nothing.

Run: .venv/bin/python benchmarks/recognize.py [--device cuda] [--only fit,stages,batched,openset]
The enrolled person is real.mov with the full default training (about 5 minutes on 2 CPU cores);
the 1k/10k persons besides are synthetic index entries sharing that person's discriminator file.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

DATA = Path(
    os.environ.get("FACEGATE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
CACHE = Path(tempfile.gettempdir()) / "facegate-bench-celeba.npz"


def celeba_photos(identities: list[str]):
    from enroll import read_photos

    for identity in identities:
        photos = read_photos(DATA / "celeba_wild" / identity)
        for frame in photos.frames:
            yield frame, identity


def celeba_faces(pipeline):
    """Every celeba_wild photo's largest face, cached between runs (never committed)."""
    from recognize.calibration import FaceSet, face_set

    if CACHE.is_file():
        saved = np.load(CACHE, allow_pickle=False)
        return FaceSet(saved["e"], saved["c"], saved["i"], int(saved["n"]))
    identities = sorted(p.name for p in (DATA / "celeba_wild").iterdir() if p.is_dir())
    faces = face_set(celeba_photos(identities), pipeline)
    np.savez(CACHE, e=faces.embeddings, c=faces.crops_64, i=faces.identity, n=faces.photos)
    return faces


def embedding_fit(pipeline) -> dict:
    from recognize.calibration import pair_distances
    from recognize.levels import fit_embedding_platt

    faces = celeba_faces(pipeline)
    genuine, impostor = pair_distances(faces)
    a, b = fit_embedding_platt(genuine, impostor)
    return {
        "faces": len(faces),
        "photos": faces.photos,
        "identities": len(set(faces.identity)),
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "platt_a": round(a, 3),
        "platt_b": round(b, 3),
        "distance_at_even_odds": round(-b / a, 4),
    }


def enrolled_store(settings, pipeline, data_dir: Path):
    """real.mov enrolled with the settings' training budgets, calibrated on celeba_wild identities
    112-223 (the open-set probes use 0-111). Reused when data_dir holds it already."""
    from db import Store, upgrade
    from db.engine import make_engine, sqlite_url
    from enroll import enroll
    from enroll.personal import store_enrollment
    from recognize import Recognizer
    from recognize.calibration import FaceSet

    fresh = not (data_dir / "facegate.db").exists()
    upgrade(make_engine(sqlite_url(data_dir)))
    store = Store(settings)
    recognizer = Recognizer(store)  # the door's own pipeline, as `facegate recognize` builds it
    if fresh:
        clip = DATA / "liveness_replay_pyimagesearch" / "real.mov"
        result = enroll("Clip Person", video=clip, settings=settings, pipeline=pipeline)
        t0 = time.perf_counter()
        store.person_id, _ = store_enrollment(store, result, pipeline, settings)
        print(f"enrollment training {time.perf_counter() - t0:.0f} s", flush=True)
    if store.level_table(settings.embedder) is None:
        faces = celeba_faces(pipeline)
        ids = sorted(set(faces.identity))
        keep = np.isin(faces.identity, ids[len(ids) // 2 :])
        half = FaceSet(faces.embeddings[keep], faces.crops_64[keep], faces.identity[keep], 0)
        recognizer.calibrate(half, "celeba_wild 112-223")
    return store, recognizer


def add_synthetic_persons(store, pipeline, embedder: str, count: int, rng, samples=40) -> None:
    """`count` index entries with embeddings drawn like celeba_wild's (a Gaussian with their mean
    and covariance), each with `samples` samples, all sharing person 1's discriminator file: one
    transaction, like a bulk import."""
    from sqlalchemy import insert, select, update

    from db.models import FaceSample, ModelArtifact, Person, StoreState

    faces = celeba_faces(pipeline)
    mean, cov = faces.embeddings.mean(0), np.cov(faces.embeddings.T)
    centres = rng.multivariate_normal(mean, cov, size=count).astype(np.float32)
    with store.sessions.begin() as session:
        model = session.scalars(
            select(ModelArtifact).where(ModelArtifact.kind == "personal_discriminator")
        ).first()
        first = (session.scalar(select(Person.id).order_by(Person.id.desc())) or 0) + 1
        ids = list(range(first, first + count))
        session.execute(insert(Person), [{"id": i, "display_name": f"synthetic {i}"} for i in ids])
        rows = []
        for i, centre in zip(ids, centres, strict=True):
            jitter = rng.normal(0, 0.03, size=(samples, len(centre))).astype(np.float32)
            for vector in centre + jitter:
                rows.append(
                    {
                        "person_id": i,
                        "embedding": vector.astype("<f4").tobytes(),
                        "dim": len(vector),
                        "embedder": embedder,
                        "embedder_version": "synthetic",
                        "source": "real",
                    }
                )
        session.execute(insert(FaceSample), rows)
        session.execute(
            insert(ModelArtifact),
            [
                {
                    "person_id": i,
                    "kind": "personal_discriminator",
                    "format": model.format,
                    "size_bytes": model.size_bytes,
                    "sha256": model.sha256,
                    "path": model.path,
                }
                for i in ids
            ],
        )
        session.execute(update(StoreState).values(version=StoreState.version + 1))
    store.rebuild_index(embedder)


def door_frames() -> list[np.ndarray]:
    """640x480 frames of the enrolled person live (fake.mp4 0-24 s: a 4:3 window around them)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import read_clip

    frames, _ = read_clip(DATA / "liveness_replay_pyimagesearch" / "fake.mp4", max_frames=25)
    return [cv2.resize(f[:, 112:832], (640, 480), interpolation=cv2.INTER_AREA) for f in frames]


def authenticity(store, recognizer, pipeline) -> dict:
    """The general discriminator's P(live) on the enrolled person live in another clip
    (fake.mp4 0-24), on the phone replay of them (fake.mp4 40-94) and on their GAN samples."""
    from gan.stored import StoredGenerator

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import read_clip

    frames, _ = read_clip(DATA / "liveness_replay_pyimagesearch" / "fake.mp4", max_frames=95)

    def crops(indices):
        out = []
        for i in indices:
            found = pipeline.detect([frames[i]])[0]
            out.append(pipeline.align(frames[i], max(found, key=lambda f: f.size_px), 64))
        return np.stack(out)

    person = store.persons_with("generator")[-1]
    sets = {
        "live_other_clip": crops(range(0, 25)),
        "phone_replay": crops(range(40, 95)),
        "gan_samples": StoredGenerator.from_bytes(store.artifact(person, "generator")).samples(64),
    }
    threshold = recognizer.settings.authenticity_min_probability
    out = {"threshold": threshold}
    for name, x in sets.items():
        p = recognizer.authenticity(x)
        out[name] = {
            "n": len(p),
            "min": round(float(p.min()), 3),
            "median": round(float(np.median(p)), 3),
            "max": round(float(p.max()), 3),
            "passing": round(float((p >= threshold).mean()), 3),
        }
    return out


def stage_latency(recognizer, frames: list[np.ndarray], repeats: int) -> dict:
    recognizer.identify([frames[0]], record=False)  # warm: models loaded, caches filled
    totals, stages, decisions = [], {}, []
    for r in range(repeats):
        d = recognizer.identify([frames[r % len(frames)]], record=False)
        totals.append(d.latency_ms["total"])
        decisions.append(d.decision)
        for k, v in d.latency_ms.items():
            stages.setdefault(k, []).append(v)
    return {
        "p50_ms": round(float(np.percentile(totals, 50)), 1),
        "p99_ms": round(float(np.percentile(totals, 99)), 1),
        "stage_mean_ms": {k: round(float(np.mean(v)), 2) for k, v in stages.items()},
        "decisions": {k: decisions.count(k) for k in set(decisions)},
    }


def batched_vs_separate(device: str, crop: np.ndarray, repeats: int = 30) -> dict:
    import torch

    from gan.dcgan import DCGANConfig
    from gan.verifier import CalibratedDiscriminator
    from recognize import PersonalDiscriminators

    models = {}
    for p in range(32):
        torch.manual_seed(p)
        models[p] = CalibratedDiscriminator(DCGANConfig(), greyscale=True).to_bytes()
    personal = PersonalDiscriminators(models.__getitem__, device)
    out = {}
    for k in (1, 8, 32):
        ids = list(range(k))
        times = {}

        def cold(ids, crop):  # a shortlist not seen before: its weights stacked first
            personal.clear_stacks()
            return personal.score(ids, crop)

        calls = (
            ("batched", personal.score),
            ("batched_cold", cold),
            ("separate", personal.score_each),
        )
        for name, call in calls:
            call(ids, crop)
            runs = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                call(ids, crop)
                if device == "cuda":
                    torch.cuda.synchronize()
                runs.append((time.perf_counter() - t0) * 1000)
            times[name] = float(np.median(runs))
        out[f"k{k}"] = {
            "batched_ms": round(times["batched"], 2),
            "batched_cold_ms": round(times["batched_cold"], 2),
            "separate_ms": round(times["separate"], 2),
            "speedup": round(times["separate"] / times["batched"], 2),
            "speedup_cold": round(times["separate"] / times["batched_cold"], 2),
        }
    return out


def glint_photos(identity: str) -> list[np.ndarray]:
    """A Glint360K identity's aligned 112 px crops, padded to 224 so MTCNN sees a whole head."""
    from evaluate.harness import glint_photos as padded

    return padded(DATA / "glint_celebs" / identity)[0]


def open_set(recognizer, pipeline, enrolled: int = 6, enroll_photos: int = 30) -> dict:
    """Enroll the first `enrolled` Glint identities from `enroll_photos` photos each (the
    settings' training budgets); probe with their other photos (mated), with the other Glint
    identities and celeba_wild 0-111 (non-mated). FNIR at FPIR = 1e-2 on the best candidate's
    fused score, and the decisions at level 6."""
    from enroll import enroll_frames
    from enroll.personal import store_enrollment
    from evaluate.harness import glint_enrollment

    store = recognizer.store
    # test-sized budgets for the probed persons: about a minute each on 2 CPU cores
    settings = recognizer.settings.model_copy(
        update={"gan_steps": 60, "verifier_steps": 150, "general_incremental_steps": 40}
    )
    identities = sorted(p.name for p in (DATA / "glint_celebs").iterdir() if p.is_dir())
    mated, non_mated, person_of = [], [], {}
    for identity in identities[:enrolled]:
        sampled, frames = glint_enrollment(DATA / "glint_celebs" / identity, enroll_photos)
        result = enroll_frames(sampled, identity, pipeline, settings)
        t0 = time.perf_counter()
        person_of[identity], _ = store_enrollment(store, result, pipeline, settings)
        print(f"enrolled {identity} in {time.perf_counter() - t0:.0f} s", flush=True)
        mated += [(f, person_of[identity]) for f in frames[enroll_photos:]]
    for identity in identities[enrolled:]:
        non_mated += glint_photos(identity)
    celeba = celeba_faces(pipeline)
    ids = sorted(set(celeba.identity))[: len(set(celeba.identity)) // 2]
    non_mated += [f for f, _ in celeba_photos(ids)]
    recognizer.refresh()

    def best(frame):
        d = recognizer.identify([frame], record=False)
        top = d.candidates[0] if d.candidates else None
        return d, top

    mated_scores, mated_right, mated_decisions = [], [], []
    for frame, person in mated:
        d, top = best(frame)
        if top is None:
            continue  # no face or poor quality: counted below as a failure to acquire
        mated_scores.append(top.fused)
        mated_right.append(top.person_id == person)
        mated_decisions.append("grant" if d.granted and d.person_id == person else d.decision)
    non_scores, non_decisions = [], []
    for frame in non_mated:
        d, top = best(frame)
        non_decisions.append(d.decision)
        if top is not None:
            non_scores.append(top.fused)
    non_scores = np.array(non_scores)
    threshold = float(np.quantile(non_scores, 0.99))  # 1% of non-mated probes reach it
    hits = np.array(mated_right) & (np.array(mated_scores) > threshold)
    return {
        "enrolled_identities": enrolled,
        "mated_probes": len(mated),
        "mated_scored": len(mated_scores),
        "non_mated_probes": len(non_mated),
        "non_mated_scored": len(non_scores),
        "rank1": round(float(np.mean(mated_right)), 4),
        "fpir": round(float((non_scores > threshold).mean()), 4),
        "fnir_at_fpir_1e-2": round(1 - float(hits.sum()) / len(mated), 4),
        "decisions_mated": {k: mated_decisions.count(k) for k in set(mated_decisions)},
        "decisions_non_mated": {k: non_decisions.count(k) for k in set(non_decisions)},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default="fit,stages,batched,openset")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse an enrolled store")
    parser.add_argument("--repeats", type=int, default=60)
    args = parser.parse_args()
    from facegate.settings import Settings
    from recognize import FacePipeline

    data_dir = args.data_dir or Path(tempfile.mkdtemp()) / "facegate-data"
    settings = Settings(_env_file=None, device=args.device, data_dir=data_dir)
    pipeline = FacePipeline(settings)
    only = set(args.only.split(","))
    out = {"device": args.device, "torch_threads": __import__("torch").get_num_threads()}
    if "fit" in only:
        out["embedding_fit"] = embedding_fit(pipeline)
        print(json.dumps(out["embedding_fit"]), flush=True)
    if only & {"stages", "openset"}:
        store, recognizer = enrolled_store(settings, pipeline, data_dir)
        table = recognizer.levels()
        out["levels"] = table.rows()
        out["authenticity"] = authenticity(store, recognizer, pipeline)
        print(json.dumps(out["authenticity"]), flush=True)
        print(json.dumps({"impostor_trials": table.impostor_trials}), flush=True)
    if "openset" in only:
        out["open_set"] = open_set(recognizer, pipeline)
        print(json.dumps(out["open_set"]), flush=True)
    if "stages" in only:
        frames = door_frames()
        rng = np.random.default_rng(0)
        out["latency"] = {}
        # the same store and frames through dlib-bin's ResNet: the ratio of the two, one run
        from recognize import Recognizer

        reference = Recognizer(
            store, settings=settings.model_copy(update={"dlib_runtime": "dlib-bin"})
        )
        for total in (1_000, 10_000):
            have = len(store.templates(settings.embedder)[1])
            add_synthetic_persons(store, pipeline, settings.embedder, total - have, rng)
            recognizer.refresh()
            out["latency"][f"{total}_persons"] = stage_latency(recognizer, frames, args.repeats)
            print(json.dumps({total: out["latency"][f"{total}_persons"]}), flush=True)
            if total == 1_000 and settings.embedder == "dlib":
                reference.refresh()
                native = stage_latency(reference, frames, args.repeats)
                out["latency"]["1000_persons_dlib_bin"] = native
                ratio = native["p50_ms"] / out["latency"]["1000_persons"]["p50_ms"]
                out["latency"]["p50_ratio_dlib_bin_to_torch"] = round(ratio, 2)
                print(
                    json.dumps({"1000_dlib_bin": native, "p50_ratio": round(ratio, 2)}), flush=True
                )
    if "batched" in only:  # last: the timings above and below do not overlap training
        from recognize.calibration import face_set

        first = sorted(p.name for p in (DATA / "celeba_wild").iterdir() if p.is_dir())[0]
        crop = face_set(celeba_photos([first]), pipeline).crops_64[0]
        out["batched_personal_discriminators"] = batched_vs_separate(args.device, crop)
        print(json.dumps(out["batched_personal_discriminators"]), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
