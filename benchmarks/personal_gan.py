"""Benchmark of enrollment's model training (issue 4): per person, the seconds of each stage for the
configured budget (GAN, sample checks, personal discriminator, general discriminator), seconds per
GAN step, identity preservation, diversity and collapse of the samples, the personal
discriminator's AUC and EER (held out inside training, and against 30 CelebA identities it never
saw), and the general discriminator's AUC against generated samples, simulated attacks and a real
phone-screen replay. Optionally, batched training of P persons against P single runs.
Prints numbers; asserts nothing.

    .venv/bin/python benchmarks/personal_gan.py [--gan-steps N] [--persons clip,ben_afflek]
        [--device cpu|cuda] [--batched P --batched-steps S]

Persons: `clip` is the turning-head clip real.mov; `glint:N` the N-th glint_celebs identity
enrolled from its first --photos photos (the issue-14 measure: 40); other names are photo folders of
celeb5_faces/train. They are enrolled in that order into a fresh SQLite store, so later persons
get earlier ones' generator samples as negatives and an incrementally updated general model.
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
import torch

# run as a script, this folder comes first on sys.path, where recognize.py would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import Store, upgrade
from db.engine import make_engine, sqlite_url
from enroll import enroll, enroll_frames
from enroll.impostors import folder_crops
from enroll.personal import store_enrollment
from evaluate.harness import glint_enrollment
from facegate.metrics import equal_error_rate, roc_auc
from facegate.settings import Settings
from gan import TrainConfig, train_person_gan
from gan.batched import train_person_gans
from gan.stored import StoredGenerator
from gan.verifier import CalibratedDiscriminator
from recognize import FacePipeline

DATA = Path(
    os.environ.get("FACEGATE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def strangers(pipeline: FacePipeline) -> np.ndarray:
    folders = sorted(p for p in (DATA / "celeba_wild").iterdir() if p.is_dir())[:30]
    return np.concatenate([folder_crops(f, pipeline) for f in folders])


def replay(pipeline: FacePipeline) -> np.ndarray:
    """fake.mp4 from 2.3 s to 6.3 s, where the phone screen is the only face in view."""
    cap = cv2.VideoCapture(str(DATA / "liveness_replay_pyimagesearch" / "fake.mp4"))
    frames = []
    while len(frames) < 95:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    frames = frames[35:]
    found = pipeline.detect(frames)
    return np.stack(
        [pipeline.align(f, d[0], 64) for f, d in zip(frames, found, strict=True) if len(d) == 1]
    )


def batched_timing(crops: np.ndarray, persons: int, steps: int, device: str) -> dict:
    cfg = TrainConfig(steps=steps)

    def timed(fn) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    timed(lambda: train_person_gan(crops, TrainConfig(steps=2), device=device))  # warm up
    single = timed(lambda: train_person_gan(crops, cfg, device=device))
    batched = timed(lambda: train_person_gans([crops] * persons, cfg, device=device))
    return {
        "persons": persons,
        "steps": steps,
        "single_run_s": round(single, 2),
        "batched_s": round(batched, 2),
        "speedup_vs_separate_runs": round(single * persons / batched, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Settings(_env_file=None)
    parser.add_argument("--gan-steps", type=int, default=defaults.gan_steps)
    parser.add_argument("--persons", default="clip")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batched", type=int, default=0, help="P persons at once (0: skip)")
    parser.add_argument("--batched-steps", type=int, default=20)
    parser.add_argument("--photos", type=int, default=40, help="photos per glint:N enrollment")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="facegate-bench-"))
    settings = Settings(
        _env_file=None, data_dir=folder, device=args.device, gan_steps=args.gan_steps
    )
    pipeline = FacePipeline(settings)
    upgrade(make_engine(sqlite_url(folder)))
    store = Store(settings)
    unseen = strangers(pipeline)
    attack = replay(pipeline)
    out: dict = {"device": args.device, "torch_threads": torch.get_num_threads(), "persons": []}
    for name in args.persons.split(","):
        if name.startswith("glint:"):
            folder = sorted(p for p in (DATA / "glint_celebs").iterdir() if p.is_dir())
            sampled, _ = glint_enrollment(folder[int(name[6:])], args.photos)
            result = enroll_frames(sampled, folder[int(name[6:])].name, pipeline, settings)
        else:
            if name == "clip":
                source = {"video": DATA / "liveness_replay_pyimagesearch" / "real.mov"}
            else:
                source = {"photos": DATA / "celeb5_faces" / "train" / name}
            result = enroll(name, settings=settings, pipeline=pipeline, **source)
        t0 = time.perf_counter()
        person_id, models = store_enrollment(store, result, pipeline, settings)
        total = time.perf_counter() - t0
        verifier = CalibratedDiscriminator.from_bytes(
            store.artifact(person_id, "personal_discriminator")
        )
        own = verifier.probability(result.crops_gan[3::4])  # held out of its training
        other = verifier.probability(unseen)
        general = CalibratedDiscriminator.from_bytes(store.general_discriminator())
        real_live = general.probability(result.crops_gan[3::4])
        fresh = StoredGenerator.from_bytes(store.artifact(person_id, "generator")).samples(
            64, seed=1234
        )
        row = {
            "person": name,
            "source_kind": result.source_kind,
            "crops": len(result.crops_gan),
            "total_s": round(total, 1),
            "gan_ms_per_step": round(models["seconds"]["gan"] / models["gan_steps"] * 1000, 1),
            **models,
            "personal_vs_30_unseen_identities": {
                "auc": round(roc_auc(own, other), 4),
                "eer": round(equal_error_rate(own, other)[0], 4),
                "own_above_half": round(float((own > 0.5).mean()), 3),
                "unseen_above_half": round(float((other > 0.5).mean()), 3),
            },
            "general_now": {
                "auc_live_vs_fresh_generated": round(
                    roc_auc(real_live, general.probability(fresh)), 4
                ),
                "auc_unseen_faces_vs_fresh_generated": round(
                    roc_auc(general.probability(unseen), general.probability(fresh)), 4
                ),
            },
        }
        if name == "clip":  # the replay shows this person
            row["general_now"]["auc_live_vs_real_phone_replay"] = round(
                roc_auc(real_live, general.probability(attack)), 4
            )
        out["persons"].append(row)
        print(json.dumps(row), flush=True)
    if args.batched:
        crops = enroll(
            "b",
            video=DATA / "liveness_replay_pyimagesearch" / "real.mov",
            settings=settings,
            pipeline=pipeline,
        ).crops_gan
        out["batched"] = batched_timing(crops, args.batched, args.batched_steps, args.device)
    store.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
