"""A separate process that writes to a store: for kill -9 and concurrent-writer tests.

python -m tests.db_writer URL DATA_DIR kill STEP     enroll one person, SIGKILL itself at STEP
python -m tests.db_writer URL DATA_DIR many N TAG    enroll N persons named TAG-i
"""

import os
import signal
import sys
from pathlib import Path

import numpy as np

from db import ArtifactIn, SampleIn, Store
from facegate.settings import Settings


def person(rng: np.random.Generator, n: int = 6) -> tuple[list[SampleIn], list[ArtifactIn]]:
    samples = [
        SampleIn(rng.normal(size=128).astype(np.float32), yaw_deg=float(i)) for i in range(n)
    ]
    artifacts = [
        ArtifactIn("generator", "torch-fp16", rng.bytes(4096)),
        ArtifactIn("personal_discriminator", "torch-fp16", rng.bytes(2048)),
    ]
    return samples, artifacts


def main() -> None:
    url, data_dir, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    store = Store(Settings(_env_file=None, data_dir=data_dir), url=url)
    if mode == "kill":
        step = sys.argv[4]

        def fault(name: str) -> None:
            if name == step:
                os.kill(os.getpid(), signal.SIGKILL)

        samples, artifacts = person(np.random.default_rng(1))
        store.add_person("Killed Midway", "dlib", "test", samples, artifacts, fault=fault)
    else:
        n, tag = int(sys.argv[4]), sys.argv[5]
        rng = np.random.default_rng(abs(hash(tag)) % 2**32)
        for i in range(n):
            samples, artifacts = person(rng)
            store.add_person(f"{tag}-{i}", "dlib", "test", samples, artifacts)
    store.close()


if __name__ == "__main__":
    main()
