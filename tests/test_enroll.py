"""Enrollment from real clips and photos, and a clear, specific error for every kind of bad input."""

import shutil

import cv2
import numpy as np
import pytest

from enroll import POSE_BINS, enroll, read_live, read_photos, read_video
from facegate.errors import (
    CameraUnavailableError,
    ClipTooShortError,
    EmptyFileError,
    InsufficientHeadTurnError,
    MultiplePeopleError,
    NoFaceError,
    NotAVideoError,
    NoUsablePhotoError,
    PoorQualityError,
    SourceNotFoundError,
    TruncatedVideoError,
)
from tests.conftest import read_clip, write_clip


def test_a_real_turning_head_clip_enrolls_with_full_pose_coverage(enrolled, pipeline):
    s = pipeline.settings
    summary = enrolled.summary()
    for b in POSE_BINS:
        assert summary["pose_coverage"][b] >= s.pose_min_faces_per_bin, summary["pose_coverage"]
        assert summary["selected_pose_coverage"][b] >= 1
    assert summary["yaw_range_deg"][0] < -30 and summary["yaw_range_deg"][1] > 30
    k = len(enrolled.embeddings)
    assert s.enroll_min_faces <= k <= s.enroll_max_faces
    assert enrolled.crops_gan.shape == (k, s.gan_crop_px, s.gan_crop_px, 3)
    assert enrolled.crops_embedder.shape == (k, 150, 150, 3)
    assert enrolled.embeddings.shape == (k, 128)
    # the quality table has one row per sampled frame; the selected rows are the kept faces
    assert len(enrolled.frames) == summary["frames_sampled"] >= 60
    assert sum(r.selected for r in enrolled.frames) == k
    assert all(r.quality is not None for r in enrolled.frames if r.selected)
    assert summary["faces_kept"] >= k and summary["source_kind"] == "video"
    assert set(summary["dropped"]) <= {
        "low_confidence",
        "blurred",
        "too_small",
        "cut_off",
        "no_face",
    }


def test_the_selected_faces_are_one_person_and_diverse(enrolled, pipeline):
    from recognize import face_distance

    d = face_distance(enrolled.embeddings, enrolled.embeddings)
    centroid = enrolled.embeddings.mean(0, keepdims=True)
    assert (
        face_distance(enrolled.embeddings, centroid).max()
        < pipeline.embedder.same_person_max_distance
    )
    # no two selected faces are near-duplicates of each other
    off_diagonal = d[~np.eye(len(d), dtype=bool)]
    assert off_diagonal.min() > 0.02


def test_missing_file_is_refused(tmp_path, settings):
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        enroll("x", video=tmp_path / "nothing.mp4", settings=settings)


def test_empty_file_is_refused(tmp_path, settings):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyFileError, match="empty"):
        enroll("x", video=empty, settings=settings)


def test_a_text_file_is_not_a_video(tmp_path, settings):
    text = tmp_path / "notes.mp4"
    text.write_text("minutes of the security meeting\n" * 20)
    with pytest.raises(NotAVideoError, match="not a video"):
        enroll("x", video=text, settings=settings)


def test_a_photo_given_as_a_video_points_to_photos(data, settings):
    with pytest.raises(NotAVideoError, match="--photos"):
        enroll("x", video=data / "face_recognition_examples" / "obama.jpg", settings=settings)


def test_a_truncated_webm_is_refused(tmp_path, real_clip, settings):
    cut = tmp_path / "cut.webm"
    cut.write_bytes(real_clip.read_bytes()[:300_000])
    with pytest.raises(TruncatedVideoError, match="promises 199 frames"):
        enroll("x", video=cut, settings=settings)


def test_a_truncated_mp4_is_refused(tmp_path, data, settings):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(
        (data / "face_recognition_examples" / "short_hamilton_clip.mp4").read_bytes()[:300_000]
    )
    with pytest.raises(TruncatedVideoError, match="truncated"):
        enroll("x", video=cut, settings=settings)


def test_a_clip_that_is_too_short_is_refused(data, settings):
    with pytest.raises(ClipTooShortError, match="3.1 s long"):
        enroll("x", video=data / "liveportrait_driving" / "d0.mp4", settings=settings)


def test_a_clip_without_a_face_is_refused(tmp_path, settings):
    import skimage.data

    scene = skimage.data.coffee()
    frames = [np.roll(scene, 3 * i, axis=1) for i in range(75)]
    clip = write_clip(tmp_path / "no_face.mp4", frames, fps=15)
    with pytest.raises(NoFaceError, match=r"no face found in \d+ sampled frames"):
        enroll("x", video=clip, settings=settings)


def test_two_people_taking_turns_are_refused(tmp_path, data, real_clip, pipeline):
    first, _ = read_clip(real_clip, max_frames=90)
    second, _ = read_clip(data / "liveportrait_driving" / "d12.mp4", max_frames=90)
    second = [
        cv2.copyMakeBorder(cv2.resize(f, (540, 540)), 0, 0, 210, 210, cv2.BORDER_CONSTANT)
        for f in second
    ]
    turns = first[:30] + second[:30] + first[30:60] + second[30:60] + first[60:90] + second[60:90]
    clip = write_clip(tmp_path / "two_people.mp4", turns, fps=15)
    with pytest.raises(MultiplePeopleError, match="different person") as caught:
        enroll("x", video=clip, settings=pipeline.settings, pipeline=pipeline)
    assert "s," in caught.value.message  # it says when the other person appears


def test_a_recorded_scene_cutting_to_other_people_is_refused(data, pipeline):
    clip = data / "face_recognition_examples" / "short_hamilton_clip.mp4"
    with pytest.raises(MultiplePeopleError):
        enroll("x", video=clip, settings=pipeline.settings, pipeline=pipeline)


def test_a_dark_clip_is_refused_as_too_dark(tmp_path, real_clip, pipeline):
    frames, fps = read_clip(real_clip)
    dark = [(f * 0.45).astype(np.uint8) for f in frames]
    clip = write_clip(tmp_path / "dark.mp4", dark, fps)
    with pytest.raises(PoorQualityError, match="too dark") as caught:
        enroll("x", video=clip, settings=pipeline.settings, pipeline=pipeline)
    assert "better light" in caught.value.message


def test_a_blurred_clip_is_refused_as_blurred(tmp_path, real_clip, pipeline):
    frames, fps = read_clip(real_clip)
    blurred = [cv2.GaussianBlur(f, (0, 0), 3.0) for f in frames]
    clip = write_clip(tmp_path / "blurred.mp4", blurred, fps)
    with pytest.raises(PoorQualityError, match="blurred"):
        enroll("x", video=clip, settings=pipeline.settings, pipeline=pipeline)


def test_a_clip_without_enough_head_turn_is_refused(data, pipeline):
    with pytest.raises(InsufficientHeadTurnError, match="missing: left, right") as caught:
        enroll(
            "x",
            video=data / "liveportrait_driving" / "d10.mp4",
            settings=pipeline.settings,
            pipeline=pipeline,
        )
    assert "turn slowly" in caught.value.message


def test_a_photo_folder_of_one_person_enrolls(data, pipeline):
    folder = data / "celeb5_faces" / "train" / "ben_afflek"
    result = enroll("Ben", photos=folder, settings=pipeline.settings, pipeline=pipeline)
    summary = result.summary()
    assert summary["source_kind"] == "photos"
    assert len(result.embeddings) >= 8
    assert all(r.name for r in result.frames)


def test_a_photo_folder_of_two_people_is_refused(tmp_path, data, pipeline):
    for person in ("ben_afflek", "madonna"):
        for photo in sorted((data / "celeb5_faces" / "train" / person).iterdir())[:6]:
            shutil.copy(photo, tmp_path / f"{person}_{photo.name}")
    with pytest.raises(MultiplePeopleError, match="photos with a face show a different person"):
        enroll("x", photos=tmp_path, settings=pipeline.settings, pipeline=pipeline)


def test_a_photo_folder_without_a_usable_photo_is_refused(tmp_path, settings):
    import skimage.data

    (tmp_path / "readme.txt").write_text("not a photo")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    cv2.imwrite(str(tmp_path / "cup.png"), skimage.data.coffee())
    with pytest.raises(NoUsablePhotoError, match="no usable photo"):
        enroll("x", photos=tmp_path, settings=settings)
    (tmp_path / "cup.png").unlink()
    with pytest.raises(NoUsablePhotoError, match="broken.jpg: cannot be decoded"):
        read_photos(tmp_path)


def test_a_missing_photo_folder_is_refused(tmp_path, settings):
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        enroll("x", photos=tmp_path / "absent", settings=settings)


def test_a_camera_or_stream_that_cannot_be_opened_is_refused():
    with pytest.raises(CameraUnavailableError, match="camera 57"):
        read_live(57, sample_fps=5, capture_seconds=1)
    with pytest.raises(CameraUnavailableError, match="rtsp://127.0.0.1:1/door"):
        read_live("rtsp://127.0.0.1:1/door", sample_fps=5, capture_seconds=1)


def test_a_stream_is_sampled_by_its_own_clock(real_clip):
    sampled = read_live(str(real_clip), sample_fps=5, capture_seconds=6)
    assert 28 <= len(sampled.frames) <= 31
    assert np.diff(sampled.times_s[1:]).mean() == pytest.approx(0.2, abs=0.02)


def test_a_clip_is_sampled_at_the_configured_rate(real_clip):
    sampled = read_video(real_clip, sample_fps=2, max_seconds=60)
    assert sampled.frames_read == 199
    assert len(sampled.frames) == 27  # 13.3 s at 2 frames per second
    assert sampled.frames[0].shape == (540, 960, 3)


def test_a_4k_clip_turning_one_way_only_is_refused_and_read_small(data, pipeline):
    clip = data / "video_head_turn_3ddfa" / "Side.mp4"  # 3456x2234, frontal then mostly profile
    sampled = read_video(clip, sample_fps=1, max_seconds=3, max_side_px=1280)
    assert max(sampled.frames[0].shape[:2]) == 1280
    with pytest.raises(InsufficientHeadTurnError, match="missing: .*right"):
        enroll("x", video=clip, settings=pipeline.settings, pipeline=pipeline)
