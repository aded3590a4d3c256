"""Benchmark of the face pipeline (dlib embedder): verification on labelled real photos, and
per-stage latency at 640x480. Prints numbers; asserts nothing. Run: .venv/bin/python benchmarks/face_pipeline.py

Needs ../shared/data (or FACEGATE_TEST_DATA). Verification follows the usual protocol: every
same-identity pair is genuine, every cross-identity pair an impostor; photos where no face is
found count as failures to acquire and take no part in the pairs.
"""

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

# run as a script, this folder comes first on sys.path, where recognize.py would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facegate.settings import Settings
from recognize import FacePipeline, face_distance, measure_quality

DATA = Path(
    os.environ.get("FACEGATE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def labelled_sets(limit: int | None) -> dict[str, list[tuple[Path, str]]]:
    sets: dict[str, list[tuple[Path, str]]] = {}
    with open(DATA / "celeba_wild" / "labels.csv") as fh:
        sets["celeba_wild"] = [
            (DATA / "celeba_wild" / r["path"], r["celeba_identity"]) for r in csv.DictReader(fh)
        ]
    glint = DATA / "glint_celebs"
    sets["glint_celebs"] = [
        (p, d.name) for d in sorted(glint.iterdir()) if d.is_dir() for p in sorted(d.iterdir())
    ]
    if limit:
        sets = {k: v[:limit] for k, v in sets.items()}
    return sets


def embed_photos(
    pipeline: FacePipeline, photos: list[tuple[Path, str]]
) -> tuple[np.ndarray, list[str], int]:
    vectors, labels, missed = [], [], 0
    for path, label in photos:
        image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        faces = pipeline.analyze([image], largest_only=True)[0]
        if not faces:
            missed += 1
            continue
        vectors.append(faces[0].embedding)
        labels.append(label)
    return np.stack(vectors), labels, missed


def verification(vectors: np.ndarray, labels: list[str], fixed_threshold: float) -> dict:
    d = face_distance(vectors, vectors)
    same = np.equal.outer(np.array(labels), np.array(labels))
    upper = np.triu(np.ones_like(same, dtype=bool), k=1)
    genuine, impostor = d[same & upper], d[~same & upper]
    out = {"genuine_pairs": int(genuine.size), "impostor_pairs": int(impostor.size)}
    # accuracy at the embedder's fixed operating point, genuine and impostor weighted equally
    tar, trr = (genuine <= fixed_threshold).mean(), (impostor > fixed_threshold).mean()
    out["accuracy_at_fixed_threshold"] = round(float((tar + trr) / 2), 4)
    out["fixed_threshold"] = fixed_threshold
    out["tar_at_fixed_threshold"] = round(float(tar), 4)
    out["far_at_fixed_threshold"] = round(float(1 - trr), 5)
    # 10-fold cross-validated accuracy on balanced pairs (the LFW way: threshold from 9 folds)
    rng = np.random.default_rng(0)
    n = min(genuine.size, impostor.size)
    g, i = rng.permutation(genuine)[:n], rng.permutation(impostor)[:n]
    folds = np.arange(n) % 10
    thresholds = np.linspace(0.2, 1.0, 161)
    accs = []
    for k in range(10):
        tr, te = folds != k, folds == k
        train_acc = [((g[tr] <= t).mean() + (i[tr] > t).mean()) / 2 for t in thresholds]
        t = thresholds[int(np.argmax(train_acc))]
        accs.append(((g[te] <= t).mean() + (i[te] > t).mean()) / 2)
    out["accuracy_10fold_balanced"] = round(float(np.mean(accs)), 4)
    out["accuracy_10fold_std"] = round(float(np.std(accs)), 4)
    for far in (1e-2, 1e-3):
        if impostor.size * far < 3:  # rule of 3: too few impostors to estimate this rate
            out[f"tar_at_far_{far:g}"] = None
            continue
        threshold = float(np.quantile(impostor, far))
        out[f"tar_at_far_{far:g}"] = round(float((genuine <= threshold).mean()), 4)
        out[f"threshold_at_far_{far:g}"] = round(threshold, 4)
    return out


def latency(pipeline: FacePipeline, frames: list[np.ndarray]) -> dict:
    """Median ms per frame of each stage, one frame at a time (a door's case), after warm-up."""
    pipeline.detect(frames[:2])
    stages: dict[str, list[float]] = {"detect": [], "align": [], "quality": [], "embed": []}
    for frame in frames:
        t0 = time.perf_counter()
        faces = pipeline.detect([frame])[0]
        t1 = time.perf_counter()
        if not faces:
            continue
        crop = pipeline.align(frame, faces[0])
        t2 = time.perf_counter()
        measure_quality(frame, faces[0])
        t3 = time.perf_counter()
        pipeline.embed([crop])
        t4 = time.perf_counter()
        for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[name].append(seconds * 1000)
    out = {f"{k}_ms_p50": round(statistics.median(v), 2) for k, v in stages.items()}
    out["total_ms_p50"] = round(sum(out.values()), 2)
    t0 = time.perf_counter()
    pipeline.detect(frames)
    out["detect_batched_ms_per_frame"] = round((time.perf_counter() - t0) * 1000 / len(frames), 2)
    out["frames"] = len(stages["detect"])
    return out


def door_frames(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(DATA / "liveness_replay_pyimagesearch" / "real.mov"))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(
            cv2.cvtColor(
                cv2.resize(frame, (640, 480), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
            )
        )
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="photos per set (quick run)")
    parser.add_argument("--frames", type=int, default=60, help="640x480 frames for latency")
    args = parser.parse_args()
    settings = Settings(_env_file=None)
    results: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        }
    }
    cpu = FacePipeline(settings.model_copy(update={"device": "cpu"}))
    for name, photos in labelled_sets(args.limit).items():
        t0 = time.perf_counter()
        vectors, labels, missed = embed_photos(cpu, photos)
        entry = verification(vectors, labels, cpu.embedder.same_person_max_distance)
        entry.update(
            photos=len(photos),
            identities=len(set(labels)),
            failure_to_acquire=round(missed / len(photos), 4),
            seconds=round(time.perf_counter() - t0, 1),
        )
        results[name] = entry
        print(name, json.dumps(entry), flush=True)
    frames = door_frames(args.frames)
    results["latency_640x480_cpu"] = latency(cpu, frames)
    print("latency_640x480_cpu", json.dumps(results["latency_640x480_cpu"]), flush=True)
    if torch.cuda.is_available():
        gpu = FacePipeline(settings.model_copy(update={"device": "cuda"}))
        results["latency_640x480_cuda_detect"] = latency(gpu, frames)
        print(
            "latency_640x480_cuda", json.dumps(results["latency_640x480_cuda_detect"]), flush=True
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
