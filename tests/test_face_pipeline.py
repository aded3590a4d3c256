"""The shared face pipeline on real faces: detection, alignment, embeddings, quality, embedder backends."""

import csv
import itertools

import cv2
import numpy as np
import pytest
import torch

from facegate.errors import ConfigurationError, ModelFileError
from facegate.settings import Settings
from recognize import (
    FACE_TEMPLATE,
    FacenetEmbedder,
    align_face,
    estimate_yaw_deg,
    face_distance,
    make_embedder,
)
from recognize.align import similarity_transform
from tests.conftest import read_rgb


def celeba_subset(data, identities: int, per_identity: int) -> dict[str, list]:
    """The first photos of the first identities of the labelled CelebA set."""
    by_id: dict[str, list] = {}
    with open(data / "celeba_wild" / "labels.csv") as fh:
        for row in csv.DictReader(fh):
            by_id.setdefault(row["celeba_identity"], []).append(data / "celeba_wild" / row["path"])
    chosen = sorted(k for k, v in by_id.items() if len(v) >= per_identity)[:identities]
    return {k: by_id[k][:per_identity] for k in chosen}


def test_detection_finds_the_face_in_labelled_photos(data, pipeline):
    photos = [p for paths in celeba_subset(data, 20, 3).values() for p in paths]
    found = [pipeline.detect([read_rgb(p)])[0] for p in photos]
    share = sum(1 for f in found if f) / len(photos)
    assert share >= 0.95, f"a face was found in only {share:.0%} of {len(photos)} labelled photos"
    for faces in found:
        for face in faces:
            assert face.landmarks.shape == (5, 2) and 0.0 <= face.prob <= 1.0


def test_detection_finds_many_faces_in_a_group_photo(data, pipeline):
    faces = pipeline.detect([read_rgb(data / "facenet_pytorch_samples" / "multiface.jpg")])[0]
    assert len(faces) >= 4
    sizes = [f.size_px for f in faces]
    assert sizes == sorted(sizes, reverse=True)


def test_batched_detection_matches_one_frame_at_a_time(data, pipeline):
    cap = cv2.VideoCapture(str(data / "liveness_replay_pyimagesearch" / "real.mov"))
    frames = []
    for _ in range(6):
        for _ in range(10):
            ok, frame = cap.read()
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    batched = pipeline.detect(frames)
    for frame, faces in zip(frames, batched, strict=True):
        alone = pipeline.detect([frame])[0]
        assert len(alone) == len(faces) >= 1
        np.testing.assert_allclose(alone[0].box, faces[0].box, atol=2.0)


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = np.radians(12.0), 1.7, np.array([30.0, -12.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = FACE_TEMPLATE * 100
    m = similarity_transform(src, src @ rot.T + shift)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


@pytest.mark.parametrize("size", [64, 150])
def test_aligned_crop_puts_the_landmarks_on_the_template(data, pipeline, size):
    image = read_rgb(data / "face_recognition_examples" / "obama.jpg")
    face = pipeline.detect([image])[0][0]
    crop = align_face(image, face.landmarks, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    # find the face again inside a padded copy of the crop: its landmarks sit on the template
    pad = size
    canvas = cv2.copyMakeBorder(
        crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128)
    )
    again = pipeline.detect([cv2.resize(canvas, None, fx=300 / size, fy=300 / size)])[0][0]
    landmarks = again.landmarks * size / 300 - pad
    error = np.linalg.norm(landmarks - FACE_TEMPLATE * size, axis=1).mean() / size
    assert error < 0.04, f"landmarks land {error:.3f} of the crop's side away from the template"


def test_same_person_embeds_closer_than_different_people(data, pipeline):
    photos = celeba_subset(data, 25, 3)
    vectors, labels = [], []
    for identity, paths in photos.items():
        for path in paths:
            faces = pipeline.analyze([read_rgb(path)], largest_only=True)[0]
            if faces:
                vectors.append(faces[0].embedding)
                labels.append(identity)
    d = face_distance(np.stack(vectors), np.stack(vectors))
    pairs = list(itertools.combinations(range(len(labels)), 2))
    genuine = np.array([d[i, j] for i, j in pairs if labels[i] == labels[j]])
    impostor = np.array([d[i, j] for i, j in pairs if labels[i] != labels[j]])
    assert len(genuine) >= 50 and len(impostor) >= 2000
    assert genuine.mean() + 0.2 < impostor.mean()
    # CelebA in the wild (age, pose, make-up): on 60 identities this alignment accepts 89% of
    # genuine pairs at dlib's 0.6 (dlib's own 5-point chip: 88%); these 25 give about 81%.
    threshold = pipeline.embedder.same_person_max_distance
    assert (genuine <= threshold).mean() >= 0.75
    assert (impostor > threshold).mean() >= 0.98


def test_greyscale_photos_work_as_three_channels(data, pipeline):
    faces = pipeline.analyze([read_rgb(data / "orl_att_faces" / "s1" / "1.pgm")])[0]
    assert len(faces) == 1 and faces[0].embedding.shape == (128,)


def test_yaw_sign_follows_the_nose_and_flips_in_a_mirror(data, pipeline):
    image = read_rgb(data / "face_recognition_examples" / "obama.jpg")
    face = pipeline.detect([image])[0][0]
    mirrored = pipeline.detect([cv2.flip(image, 1)])[0][0]
    yaw, yaw_mirrored = estimate_yaw_deg(face.landmarks), estimate_yaw_deg(mirrored.landmarks)
    assert abs(yaw) < 15
    assert yaw_mirrored == pytest.approx(-yaw, abs=3.0)
    # a nose moved towards the image's right reads as a positive yaw
    shifted = face.landmarks.copy()
    shifted[2, 0] += 0.5 * np.linalg.norm(face.landmarks[1] - face.landmarks[0])
    assert estimate_yaw_deg(shifted) > yaw + 25


def test_quality_sees_blur_and_darkness(data, pipeline):
    from recognize import measure_quality, quality_issue

    image = read_rgb(data / "face_recognition_examples" / "obama.jpg")
    face = pipeline.detect([image])[0][0]
    settings = Settings(_env_file=None)
    sharp = measure_quality(image, face)
    blurred = measure_quality(cv2.GaussianBlur(image, (0, 0), 6), face)
    dark = measure_quality((image * 0.15).astype(np.uint8), face)
    assert quality_issue(sharp, settings) is None
    assert blurred.sharpness < sharp.sharpness / 5 and quality_issue(blurred, settings) == "blurred"
    assert dark.brightness < 40 and quality_issue(dark, settings) == "too_dark"
    assert sharp.face_px == pytest.approx(face.size_px) and sharp.visible_share == 1.0


def test_facenet_backend_names_its_setting_when_the_weights_are_missing(tmp_path):
    with pytest.raises(ConfigurationError, match="FACEGATE_FACENET_WEIGHTS"):
        make_embedder(Settings(_env_file=None, embedder="facenet"))
    with pytest.raises(ModelFileError, match="does not exist"):
        make_embedder(
            Settings(_env_file=None, embedder="facenet", facenet_weights=tmp_path / "nope.pt")
        )
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a state dict")
    with pytest.raises(ModelFileError, match="not an InceptionResnetV1 state dict"):
        make_embedder(Settings(_env_file=None, embedder="facenet", facenet_weights=garbage))


def test_facenet_backend_embeds_from_a_local_weights_file(tmp_path, data):
    from facenet_pytorch import InceptionResnetV1

    # Real VGGFace2 weights are not shipped; a state dict of the same architecture tests the
    # loading and embedding path (the numbers are not meaningful, their shape and norm are).
    torch.manual_seed(0)
    weights = tmp_path / "inception_resnet_v1.pt"
    torch.save(InceptionResnetV1(pretrained=None).state_dict(), weights)
    embedder = FacenetEmbedder(weights)
    crop = align_face(
        read_rgb(data / "face_recognition_examples" / "obama.jpg"),
        FACE_TEMPLATE * 160 + 200,  # any landmarks give a crop of the right size
        embedder.input_px,
    )
    vectors = embedder.embed([crop, crop[:, ::-1].copy()])
    assert vectors.shape == (2, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_face_cut_by_the_frame_edge_is_flagged(data, pipeline):
    from recognize import measure_quality, quality_issue

    image = read_rgb(data / "face_recognition_examples" / "obama.jpg")
    face = pipeline.detect([image])[0][0]
    eyes_y = face.landmarks[:2, 1].mean()
    # the picture's top edge runs just above the eyes: the forehead and brows are gone
    cut = image[int(eyes_y - 0.2 * (face.landmarks[2, 1] - eyes_y)) :].copy()
    found = pipeline.detect([cut])[0]
    assert found, "the detector still finds the lower face"
    quality = measure_quality(cut, found[0])
    assert quality.visible_share < 0.9
    assert quality_issue(quality, Settings(_env_file=None)) == "cut_off"
    assert measure_quality(image, face).visible_share == 1.0


def test_faces_the_door_would_refuse_are_marked_and_left_out(data, pipeline):
    """fake.mp4: the person live in the room (frames 10-19), then only a phone replaying them
    (40-94). The door's quality gate refuses the replayed faces; `usable` keeps the live ones."""
    from enroll.sources import clip_frames
    from recognize.calibration import face_set
    from recognize.quality import door_gate

    frames = clip_frames(data / "liveness_replay_pyimagesearch" / "fake.mp4", 95)
    gate = door_gate(pipeline.settings)
    labelled = [(f, "live") for f in frames[10:20]] + [(f, "replay") for f in frames[40:95]]
    found = face_set(labelled, pipeline, gate=gate)
    assert found.photos == 65 and len(found) >= 60
    live = found.identity == "live"
    assert live.sum() == 10 and (found.issues[live] == "").all()
    assert (found.issues[~live] != "").all()  # every replayed face: blurred or low confidence
    usable = found.usable()
    assert list(usable.identity) == ["live"] * 10
    assert sum(usable.poor_quality.values()) == len(found) - 10
    assert set(usable.poor_quality) <= {"blurred", "low_confidence"}
    # without a gate nothing is marked or left out
    ungated = face_set(labelled[:12], pipeline)
    assert ungated.issues is None and ungated.usable() is ungated
    replay_only = face_set(labelled[10:], pipeline, gate=gate)
    with pytest.raises(ValueError, match="refused by the quality gate"):
        replay_only.usable()
