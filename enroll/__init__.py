"""Enrollment: a clip (file, camera, stream) or a photo folder in; the person's clean aligned faces,
embeddings, pose coverage and per-frame quality table out, stored atomically. Later: the personal GAN."""

from pathlib import Path

from enroll.enrollment import DROP_REASONS, EnrollmentResult, FrameRecord, enroll_frames
from enroll.pose import POSE_BINS, pose_bin, pose_coverage
from enroll.sources import SampledFrames, read_live, read_photos, read_video
from enroll.storage import save_enrollment
from enroll.synthesis import SampleAssessment, assess_samples
from facegate.errors import SourceError
from facegate.settings import Settings, get_settings
from recognize import FacePipeline


def read_source(
    settings: Settings,
    video: str | Path | None = None,
    camera: int | None = None,
    url: str | None = None,
    photos: str | Path | None = None,
) -> SampledFrames:
    """Sample the one source named (exactly one of video, camera, url, photos)."""
    named = [x for x in (video, camera, url, photos) if x is not None]
    if len(named) != 1:
        raise SourceError(
            "name exactly one source: a video file, a camera index, a stream URL or a photo folder"
        )
    if video is not None:
        return read_video(
            video, settings.sample_fps, settings.max_clip_seconds, settings.frame_max_side_px
        )
    if camera is not None:
        return read_live(
            camera, settings.sample_fps, settings.capture_seconds, settings.frame_max_side_px
        )
    if url is not None:
        return read_live(
            url, settings.sample_fps, settings.capture_seconds, settings.frame_max_side_px
        )
    return read_photos(photos, settings.frame_max_side_px, settings.max_image_pixels)


def enroll(
    name: str,
    *,
    video: str | Path | None = None,
    camera: int | None = None,
    url: str | None = None,
    photos: str | Path | None = None,
    settings: Settings | None = None,
    pipeline: FacePipeline | None = None,
) -> EnrollmentResult:
    """Enroll `name` from one source; raises a facegate error saying what is wrong otherwise."""
    settings = settings or get_settings()
    pipeline = pipeline or FacePipeline(settings)
    sampled = read_source(settings, video=video, camera=camera, url=url, photos=photos)
    return enroll_frames(sampled, name, pipeline, settings)


__all__ = [
    "DROP_REASONS",
    "POSE_BINS",
    "EnrollmentResult",
    "SampleAssessment",
    "FrameRecord",
    "SampledFrames",
    "assess_samples",
    "enroll",
    "enroll_frames",
    "pose_bin",
    "pose_coverage",
    "read_live",
    "read_photos",
    "read_source",
    "read_video",
    "save_enrollment",
]
