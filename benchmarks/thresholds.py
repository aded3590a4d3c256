"""Where facegate's face-distance settings come from: prints the measurements behind the
alignment template, the identity cluster cut (0.7), the sample-identity rule (median <= 0.6) and
the provisional door match (0.5). Prints numbers; asserts nothing.
Run: .venv/bin/python benchmarks/thresholds.py   (about 4 minutes on 2 CPU cores)
"""

import csv
import itertools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import dlib
import numpy as np

# run as a script, this folder comes first on sys.path, where recognize.py would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enroll import enroll_frames, read_photos, read_video
from enroll.enrollment import _identities
from facegate.settings import Settings
from recognize import FacePipeline, face_distance, measure_quality, quality_issue
from recognize.embed import _face_recognition_models_dir

DATA = Path(
    os.environ.get("FACEGATE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
CELEB5 = ["ben_afflek", "madonna", "elton_john", "jerry_seinfeld", "mindy_kaling"]


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def alignment_against_dlib_chip(p: FacePipeline, identities: int = 60) -> dict:
    """Our template alignment against dlib's own 5-point chip, same faces, same ResNet."""
    models = _face_recognition_models_dir()
    shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    resnet = dlib.face_recognition_model_v1(
        str(models / "dlib_face_recognition_resnet_model_v1.dat")
    )
    by_id: dict[str, list[Path]] = {}
    with open(DATA / "celeba_wild" / "labels.csv") as fh:
        for row in csv.DictReader(fh):
            by_id.setdefault(row["celeba_identity"], []).append(DATA / "celeba_wild" / row["path"])
    ours, native, labels = [], [], []
    for identity in sorted(k for k, v in by_id.items() if len(v) >= 3)[:identities]:
        for path in by_id[identity][:4]:
            image = rgb(path)
            faces = p.detect([image])[0]
            if not faces:
                continue
            ours.append(p.embed([p.align(image, faces[0])])[0])
            box = dlib.rectangle(*[int(v) for v in faces[0].box])
            native.append(np.array(resnet.compute_face_descriptor(image, shape(image, box))))
            labels.append(identity)
    pairs = list(itertools.combinations(range(len(labels)), 2))
    out = {}
    for name, vectors in (("ours", ours), ("dlib_chip", native)):
        d = face_distance(np.stack(vectors), np.stack(vectors))
        genuine = np.array([d[i, j] for i, j in pairs if labels[i] == labels[j]])
        impostor = np.array([d[i, j] for i, j in pairs if labels[i] != labels[j]])
        out[name] = {
            "genuine_pairs": len(genuine),
            "impostor_pairs": len(impostor),
            "genuine_accepted_at_0.6": round(float((genuine <= 0.6).mean()), 4),
            "impostors_accepted_at_0.6": round(float((impostor <= 0.6).mean()), 5),
            "genuine_mean": round(float(genuine.mean()), 3),
            "impostor_mean": round(float(impostor.mean()), 3),
        }
    return out


def cluster_separation(p: FacePipeline, s: Settings, frames: list[np.ndarray]) -> dict:
    """Mean distance of every other identity cluster (cut at 0.6) to the main one."""
    vectors, frame_of = [], []
    for i, found in enumerate(p.detect(frames)):
        for face in found:
            if quality_issue(measure_quality(frames[i], face), s) in (
                "low_confidence",
                "too_small",
            ):
                continue
            vectors.append(p.embed([p.align(frames[i], face)])[0])
            frame_of.append(i)
    vectors = np.stack(vectors)
    labels = _identities(vectors, 0.6)
    groups = {lab: np.flatnonzero(labels == lab) for lab in set(labels.tolist())}
    main = max(groups, key=lambda lab: len({frame_of[k] for k in groups[lab]}))
    return {
        "main_faces": len(groups[main]),
        "other_groups": sorted(
            (
                (len(m), round(float(face_distance(vectors[m], vectors[groups[main]]).mean()), 3))
                for lab, m in groups.items()
                if lab != main
            ),
            reverse=True,
        ),
    }


def two_people_clip() -> list[np.ndarray]:
    """Two seconds of one person, two of another, in turn (as the enrollment tests build it)."""
    a = cv2.VideoCapture(str(DATA / "liveness_replay_pyimagesearch" / "real.mov"))
    b = cv2.VideoCapture(str(DATA / "liveportrait_driving" / "d12.mp4"))
    frames = []
    for turn in range(6):
        for _ in range(30):
            ok, f = (a if turn % 2 == 0 else b).read()
            if turn % 2:
                f = cv2.copyMakeBorder(
                    cv2.resize(f, (540, 540)), 0, 0, 210, 210, cv2.BORDER_CONSTANT
                )
            frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    return frames[::3]  # 5 frames per second


def main() -> None:
    s = Settings(_env_file=None, device="cpu")
    p = FacePipeline(s)
    out: dict = {"alignment_60_celeba_identities": alignment_against_dlib_chip(p)}

    sources = {
        "real.mov (one person)": read_video(
            DATA / "liveness_replay_pyimagesearch" / "real.mov", 5, 60
        ).frames,
        "two people in turn": two_people_clip(),
        "hamilton clip (cuts to the audience)": read_video(
            DATA / "face_recognition_examples" / "short_hamilton_clip.mp4", 5, 60
        ).frames,
    }
    for person in CELEB5:
        sources[f"celeb5 {person} photos"] = read_photos(
            DATA / "celeb5_faces" / "train" / person
        ).frames
    mixed = Path(tempfile.mkdtemp())
    for person in ("ben_afflek", "madonna"):
        for photo in sorted((DATA / "celeb5_faces" / "train" / person).iterdir())[:6]:
            shutil.copy(photo, mixed / f"{person}_{photo.name}")
    sources["celeb5 ben + madonna photos"] = read_photos(mixed).frames
    shutil.rmtree(mixed)
    out["identity_groups_vs_main_(size,_mean_distance)"] = {
        k: cluster_separation(p, s, v) for k, v in sources.items()
    }

    # one enrolled person (the clip), compared with held-out frames and with other people
    sampled = read_video(DATA / "liveness_replay_pyimagesearch" / "real.mov", 5, 60)
    person = enroll_frames(sampled, "clip", p, s)
    position = {idx: k for k, idx in enumerate(sampled.frame_indices)}
    held = [
        p.analyze([sampled.frames[position[r.frame_index]]], largest_only=True)[0][0].embedding
        for r in person.frames
        if r.drop_reason == "not_selected"
    ]
    others = []
    for name in CELEB5:
        for photo in sorted((DATA / "celeb5_faces" / "train" / name).iterdir()):
            faces = p.analyze([rgb(photo)], largest_only=True)[0]
            if faces:
                others.append(faces[0].embedding)
    own_64 = p.embed(
        [cv2.resize(c, (150, 150), interpolation=cv2.INTER_CUBIC) for c in person.crops_gan]
    )

    def rule(vectors: list[np.ndarray]) -> dict:
        d = face_distance(np.stack(vectors), person.embeddings)
        median, nearest = np.median(d, axis=1), d.min(axis=1)
        return {
            "faces": len(vectors),
            "median_min_max": [round(float(median.min()), 3), round(float(median.max()), 3)],
            "nearest_min_max": [round(float(nearest.min()), 3), round(float(nearest.max()), 3)],
            "median_<=0.6": round(float((median <= 0.6).mean()), 4),
            "nearest_<=0.6": round(float((nearest <= 0.6).mean()), 4),
            "nearest_<=0.5": round(float((nearest <= 0.5).mean()), 4),
        }

    out["against_the_clip_person's_40_samples"] = {
        "held_out_frames_of_the_person": rule(held),
        "the_person's_crops_via_64px": rule(list(own_64)),
        "celeb5_faces_of_other_people": rule(others),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
