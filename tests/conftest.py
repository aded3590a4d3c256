"""Shared fixtures: the real face data in ../shared/data, one face pipeline, a clean settings object."""

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from facegate.settings import Settings

DATA_DIR = Path(
    os.environ.get(
        "FACEGATE_TEST_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


def _data_root() -> Path:
    if DATA_DIR.is_dir():
        return DATA_DIR
    reason = (
        f"the real face data is not at {DATA_DIR} (set FACEGATE_TEST_DATA to its folder); "
        "tests on real faces and clips cannot run"
    )
    if os.environ.get("FACEGATE_REQUIRE_DATA") == "1":
        pytest.fail(f"FACEGATE_REQUIRE_DATA=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data() -> Path:
    """The shared real-face data folder; skips (or fails under FACEGATE_REQUIRE_DATA=1) without it."""
    return _data_root()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with the data folder in a temporary directory, untouched by any .env."""
    return Settings(_env_file=None, data_dir=tmp_path / "facegate-data")


@pytest.fixture(scope="session")
def pipeline():
    from recognize import FacePipeline

    return FacePipeline(Settings(_env_file=None))


@pytest.fixture(scope="session")
def real_clip(data):
    """The turning-head enrollment clip of one live person."""
    return data / "liveness_replay_pyimagesearch" / "real.mov"


@pytest.fixture(scope="session")
def enrolled(real_clip, pipeline):
    """That clip enrolled once for the whole session."""
    from enroll import enroll

    return enroll("Test Person", video=real_clip, settings=pipeline.settings, pipeline=pipeline)


@dataclass
class Faces:
    crops: np.ndarray  # (N, 64, 64, 3) uint8, aligned like enrollment crops
    identity: np.ndarray  # (N,) one label per face


def _faces(folders: list[Path], pipeline) -> Faces:
    from enroll.impostors import folder_crops

    crops, labels = [], []
    for label, folder in enumerate(folders):
        found = folder_crops(folder, pipeline)
        crops.append(found)
        labels += [label] * len(found)
    return Faces(np.concatenate(crops), np.array(labels))


@pytest.fixture(scope="session")
def other_people(data, pipeline) -> Faces:
    """Three celebrities' photo crops: stand-ins for other enrolled persons."""
    names = ("ben_afflek", "madonna", "elton_john")
    return _faces([data / "celeb5_faces" / "train" / n for n in names], pipeline)


@pytest.fixture(scope="session")
def strangers(data, pipeline) -> Faces:
    """Faces of 30 CelebA identities no model is ever trained on."""
    folders = sorted(p for p in (data / "celeba_wild").iterdir() if p.is_dir())[:30]
    return _faces(folders, pipeline)


@pytest.fixture(scope="session")
def short_gan(enrolled):
    """A personal GAN of the enrolled person trained for a test-sized budget (60 steps)."""
    from gan import TrainConfig, train_person_gan

    return train_person_gan(enrolled.crops_gan, TrainConfig(steps=60, seed=0))


@pytest.fixture(scope="session")
def replay_crops(data, pipeline, enrolled) -> np.ndarray:
    """A real presentation attack: the enrolled person's face replayed on a phone screen
    (fake.mp4, 2.3-6.3 s, where the screen is the only face in view), aligned 64x64."""
    frames, _ = read_clip(data / "liveness_replay_pyimagesearch" / "fake.mp4", max_frames=95)
    frames = frames[35:]
    crops = [
        pipeline.align(frame, found[0], 64)
        for frame, found in zip(frames, pipeline.detect(frames), strict=True)
        if len(found) == 1
    ]
    assert len(crops) >= 30, f"expected the replayed face in most frames, found {len(crops)}"
    return np.stack(crops)


def celeba(data: Path, first: int, count: int):
    """(photo, identity) of celeba_wild identities first .. first+count-1, in folder order."""
    from enroll import read_photos

    folders = sorted(p for p in (data / "celeba_wild").iterdir() if p.is_dir())
    for folder in folders[first : first + count]:
        for frame in read_photos(folder).frames:
            yield frame, folder.name


@pytest.fixture(scope="session")
def calibration_faces(data, pipeline):
    """Faces of celeba_wild identities 40-79, never enrolled: the impostor trials that calibrate
    the security levels (the strangers the tests probe are identities 0-29)."""
    from recognize import face_set
    from recognize.quality import door_gate

    return face_set(celeba(data, 40, 40), pipeline, gate=door_gate(pipeline.settings)).usable()


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # greyscale files come back as 3 channels
    assert image is not None, f"cannot read {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_clip(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write RGB frames as an MP4 (a test clip derived at run time, never committed)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def read_clip(path: Path, max_frames: int = 10_000) -> tuple[list[np.ndarray], float]:
    """Every frame of a clip as RGB, with its frame rate."""
    from enroll.sources import clip_frames

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return clip_frames(path, max_frames), fps


def artifact_file(store, person_id: int, kind: str) -> Path:
    """Where the store keeps one of a person's artifacts (to damage or remove it in a test)."""
    from sqlalchemy import select

    from db.models import ModelArtifact

    with store.sessions() as session:
        stored = session.scalars(
            select(ModelArtifact.path).where(
                ModelArtifact.person_id == person_id, ModelArtifact.kind == kind
            )
        ).first()
    return store.artifacts.final_path(stored)


def upload_clip(client, headers: dict, clip: Path, name: str, content_type: str = "video/webm"):
    """POST /v1/enrollments with the clip as an upload; the response."""
    return client.post(
        "/v1/enrollments",
        data={"display_name": name},
        files={"video": (clip.name, clip.read_bytes(), content_type)},
        headers=headers,
    )


@pytest.fixture
def mqtt_broker(tmp_path):
    """A real Mosquitto broker of the test's own (tests/mqtt_support.py), stopped afterwards."""
    from tests.mqtt_support import Broker

    broker = Broker(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mqtt_bus(mqtt_broker):
    """A subscriber to everything facegate publishes on `mqtt_broker`, as Home Assistant would."""
    from tests.mqtt_support import Subscriber

    bus = Subscriber(mqtt_broker.port, "facegate/#", "home-assistant")
    yield bus
    bus.close()
