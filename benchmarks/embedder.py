"""Benchmark of the dlib face ResNet's two runtimes: dlib-bin (the reference) and the torch port,
on the same aligned chips of real faces: largest difference between their vectors, pairwise
decisions at 0.6 that differ, and milliseconds per face by batch size, on the CPU and (with
--device cuda) the GPU. Prints numbers; asserts nothing.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/embedder.py [--device cuda] [--faces 64]

Needs ../shared/data (or FACEGATE_TEST_DATA): chips of celeba_wild photos, aligned by the
pipeline (MTCNN) as enrollment and the door align them.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

# run as a script, this folder comes first on sys.path, where recognize.py would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facegate.settings import Settings
from recognize import DlibEmbedder, DlibNativeEmbedder, FacePipeline, face_distance

DATA = Path(
    os.environ.get("FACEGATE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def chips(count: int) -> np.ndarray:
    from enroll import read_photos

    pipeline = FacePipeline(Settings(_env_file=None, device="cpu"))
    out = []
    for folder in sorted(p for p in (DATA / "celeba_wild").iterdir() if p.is_dir()):
        for frame in read_photos(folder).frames:
            found = pipeline.analyze([frame], largest_only=True)[0]
            if found:
                out.append(found[0].crop)
        if len(out) >= count:
            return np.stack(out[:count])
    return np.stack(out)


def ms_per_face(embed, faces: np.ndarray, batch: int, device: str, repeats: int) -> float:
    """Median over `repeats` of the time to embed `batch` faces, divided by `batch`."""
    group = list(faces[:batch])
    embed(group)  # warm-up: first-call allocations, cuDNN's algorithm choice
    runs = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        embed(group)
        if device == "cuda":
            torch.cuda.synchronize()
        runs.append((time.perf_counter() - t0) * 1000 / len(group))
    return round(statistics.median(runs), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--faces", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    faces = chips(args.faces)
    out: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        },
        "faces": len(faces),
    }
    native = DlibNativeEmbedder()
    port = DlibEmbedder(device="cpu")
    reference = native.embed(faces)
    upper = np.triu_indices(len(faces), k=1)
    same = face_distance(reference, reference)[upper] < 0.6
    runtimes = {"torch_cpu": port}
    if args.device == "cuda":
        runtimes["torch_cuda"] = DlibEmbedder(device="cuda")
    for name, embedder in runtimes.items():
        vectors = embedder.embed(faces)
        out[f"{name}_vs_dlib"] = {
            "max_abs_difference": float(np.abs(vectors - reference).max()),
            "decisions_differing_at_0.6": int(
                (same != (face_distance(vectors, vectors)[upper] < 0.6)).sum()
            ),
            "pairs": len(same),
        }
        print(name, json.dumps(out[f"{name}_vs_dlib"]), flush=True)
    timing = {"dlib_bin_cpu": {}}
    for batch in (1, 8):
        timing["dlib_bin_cpu"][batch] = ms_per_face(native.embed, faces, batch, "cpu", args.repeats)
    for name, embedder in runtimes.items():
        device = "cuda" if name.endswith("cuda") else "cpu"
        timing[name] = {}
        for batch in (1, 8, 32) + ((len(faces),) if device == "cuda" else ()):
            timing[name][batch] = ms_per_face(embedder.embed, faces, batch, device, args.repeats)
    out["ms_per_face"] = timing
    out["speedup_torch_cpu_batch1_vs_dlib_bin"] = round(
        timing["dlib_bin_cpu"][1] / timing["torch_cpu"][1], 2
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
