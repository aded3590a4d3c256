"""Benchmark of personal-GAN training (issue 4, first part): seconds per step for the default
budget, identity preservation, diversity and collapse of the samples. Prints numbers; asserts
nothing. Run: .venv/bin/python benchmarks/personal_gan.py [--steps 600]

The person is the enrollment clip in ../shared/data (real.mov), enrolled through the product's
own pipeline. Later parts of issue 4 add the personal-discriminator AUC/EER, the general
discriminator and GPU and batched figures.
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch

from enroll import assess_samples, enroll
from facegate.settings import Settings
from gan import TrainConfig, interpolate, sample_prior, train_person_gan
from recognize import FacePipeline

DATA = Path(
    os.environ.get("FACEGATE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=TrainConfig().steps)
    parser.add_argument("--samples", type=int, default=128)
    args = parser.parse_args()
    settings = Settings(_env_file=None, device="cpu")
    pipeline = FacePipeline(settings)
    person = enroll(
        "bench",
        video=DATA / "liveness_replay_pyimagesearch" / "real.mov",
        settings=settings,
        pipeline=pipeline,
    )
    out: dict = {
        "crops": len(person.crops_gan),
        "steps": args.steps,
        "torch_threads": torch.get_num_threads(),
    }
    t0 = time.perf_counter()
    trained = train_person_gan(person.crops_gan, TrainConfig(steps=args.steps))
    seconds = time.perf_counter() - t0
    out["train_seconds_cpu"] = round(seconds, 1)
    out["ms_per_step_cpu"] = round(seconds / args.steps * 1000, 1)
    out["final_recon_l1"] = round(sum(trained.curves["recon"][-20:]) / 20, 4)
    for name, samples in (
        ("interpolation", interpolate(trained, person.crops_gan, args.samples)),
        ("prior", sample_prior(trained, args.samples)),
    ):
        out[name] = assess_samples(samples, person.embeddings, pipeline, settings).summary()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
