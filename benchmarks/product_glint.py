"""Through the product, as a new user would: glint_celebs identities enrolled from 20 photos each
(enroll_frames + store_enrollment, the path of `facegate enroll --photos`, at the settings' default
training budgets), the levels calibrated on never-enrolled celeba_wild identities
(Recognizer.calibrate, as `facegate calibrate`), then one photo per query through
Recognizer.identify (as `facegate recognize`, no door: level 6): the decisions for each enrolled
person's other photos and for never-enrolled strangers. The same store is calibrated twice and
probed after each: with the sum of log-likelihood ratios (before) and with the fusion
calibration fits (after), so the two are compared in one run. Prints JSON; asserts nothing.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/product_glint.py [--device cuda]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# run as a script, this folder comes first on sys.path, where recognize.py would shadow the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import Store, upgrade
from db.engine import make_engine, sqlite_url
from enroll import enroll_frames, read_photos
from enroll.personal import store_enrollment
from evaluate.harness import glint_enrollment
from facegate.errors import EnrollmentError
from facegate.settings import Settings
from recognize import Recognizer, face_set

DATA = Path(
    os.environ.get("FACEGATE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def celeba_folders() -> list[Path]:
    return sorted(p for p in (DATA / "celeba_wild").iterdir() if p.is_dir())


def decisions(recognizer: Recognizer, probes: list[tuple[np.ndarray, int | None]]) -> dict:
    """Counts of each answer; a mated probe counts as 'grant' only when granted as its owner."""
    mated, strangers = {}, {}
    for frame, owner in probes:
        d = recognizer.identify([frame], record=False)
        if owner is None:
            strangers[d.decision] = strangers.get(d.decision, 0) + 1
        else:
            key = d.decision if d.decision != "grant" or d.person_id == owner else "grant_wrong"
            mated[key] = mated.get(key, 0) + 1
    return {"mated": mated, "strangers": strangers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--identities", type=int, default=5)
    parser.add_argument("--enroll-photos", type=int, default=20)
    parser.add_argument("--probes", type=int, default=10, help="other photos per identity")
    parser.add_argument("--calibration-identities", type=int, default=35)
    parser.add_argument("--strangers", type=int, default=40, help="celeba identities, 1 photo")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="facegate-product-")) / "data"
    settings = Settings(_env_file=None, data_dir=folder, device=args.device)
    upgrade(make_engine(sqlite_url(folder)))
    store = Store(settings)
    recognizer = Recognizer(store)
    out: dict = {"settings": {"gan_steps": settings.gan_steps, "device": args.device}}
    glint = sorted(p for p in (DATA / "glint_celebs").iterdir() if p.is_dir())
    probes: list[tuple[np.ndarray, int | None]] = []
    out["enrolled"] = {}
    for identity in glint[: args.identities]:
        k = args.enroll_photos
        sampled, frames = glint_enrollment(identity, k)
        t0 = time.perf_counter()
        try:
            result = enroll_frames(sampled, identity.name, recognizer.pipeline, settings)
            person_id, summary = store_enrollment(store, result, recognizer.pipeline, settings)
        except EnrollmentError as error:
            out["enrolled"][identity.name] = {"failed": error.code}
            continue
        out["enrolled"][identity.name] = {
            "faces": len(result.crops_gan),
            "seconds": round(time.perf_counter() - t0, 1),
            "gan_identity_rate": summary["samples"]["identity_rate"],
        }
        print(identity.name, json.dumps(out["enrolled"][identity.name]), flush=True)
        probes += [(f, person_id) for f in frames[k : k + args.probes]]
    celeba = celeba_folders()
    calibration = celeba[: args.calibration_identities]
    strangers = celeba[args.calibration_identities :][: args.strangers]
    probes += [(read_photos(f).frames[0], None) for f in strangers]

    def photos():
        for f in calibration:
            for frame in read_photos(f).frames:
                yield frame, f.name

    # as `facegate calibrate`: faces the door's quality gate would refuse are left out
    faces = face_set(photos(), recognizer.pipeline, gate=recognizer.quality_gate).usable()
    out["calibration_faces"] = {"used": len(faces), "poor_quality": faces.poor_quality}
    for name, fusion in (("before_sum_of_llrs", False), ("fusion", True)):
        t0 = time.perf_counter()
        table = recognizer.calibrate(faces, f"celeba_wild 0-{len(calibration) - 1}", fusion=fusion)
        seconds = round(time.perf_counter() - t0, 1)
        out[name] = {"calibrate_s": seconds, "notes": table.notes, **decisions(recognizer, probes)}
        print(name, json.dumps(out[name]), flush=True)
    out["probes"] = {
        "mated": sum(o is not None for _, o in probes),
        "strangers": sum(o is None for _, o in probes),
    }
    store.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
