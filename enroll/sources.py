"""Where enrollment frames come from: a video file, a camera index, an RTSP/HTTP stream, or a photo folder.

Every source yields RGB uint8 frames and refuses bad input with a specific error before any
face work starts.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

# FFmpeg's own log lines ("moov atom not found") would reach the terminal around our clear
# errors; silence them before OpenCV loads its FFmpeg backend.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

# OpenCV's own warnings ("can't open camera by index") likewise; our errors say it better.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

from facegate.errors import (  # noqa: E402
    CameraUnavailableError,
    EmptyFileError,
    FacegateError,
    NotAVideoError,
    NoUsablePhotoError,
    SourceError,
    SourceNotFoundError,
    TruncatedVideoError,
)
from facegate.images import read_image_file  # noqa: E402

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}

# Leading bytes of the containers OpenCV's FFmpeg reads, to tell "damaged video" from "not a video".
_VIDEO_MAGIC = (
    (4, b"ftyp"),  # MP4, MOV, 3GP
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    (0, b"RIFF"),  # AVI
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x47"),  # MPEG-TS sync byte
)
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"P5", b"P6")

# A clip whose decoder stops before this share of the frames its header promises is truncated.
_MIN_DECODED_SHARE = 0.9


@dataclass
class SampledFrames:
    """Frames sampled from one source, with what was read and what was skipped."""

    source: str
    kind: str  # "video", "camera", "stream" or "photos"
    frames: list[np.ndarray]  # RGB uint8
    frame_indices: list[int]  # index in the source of each sampled frame
    times_s: list[float]  # position in the source of each sampled frame
    frames_read: int  # frames decoded (clip) or files opened (photos)
    duration_s: float
    names: list[str] = field(default_factory=list)  # photo file names, one per frame
    skipped: dict[str, str] = field(default_factory=dict)  # photo name -> why it was skipped


def _check_file(path: Path) -> bytes:
    if not path.exists():
        raise SourceNotFoundError(f"video file {path} does not exist")
    if not path.is_file():
        raise SourceNotFoundError(f"{path} is not a file; use --photos for a folder of photos")
    try:
        size = path.stat().st_size
        if size == 0:
            raise EmptyFileError(f"video file {path} is empty (0 bytes); was the recording saved?")
        with path.open("rb") as fh:
            return fh.read(16)
    except OSError as exc:
        raise SourceError(f"cannot read video file {path}: {exc.strerror}") from exc


def looks_like_video(head: bytes) -> bool:
    """Whether a file's first 16 bytes are those of a video container OpenCV reads."""
    return any(head[at : at + len(magic)] == magic for at, magic in _VIDEO_MAGIC)


def _to_rgb(frame: np.ndarray, max_side_px: int) -> np.ndarray:
    """RGB, and no larger than max_side_px: every sampled frame is held in memory until the faces
    are chosen, so a 60 s 4K clip would otherwise take gigabytes."""
    h, w = frame.shape[:2]
    if max(h, w) > max_side_px:
        scale = max_side_px / max(h, w)
        frame = cv2.resize(
            frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
        )
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def read_video(
    path: str | Path, sample_fps: float, max_seconds: float, max_side_px: int = 1280
) -> SampledFrames:
    """Sample a video file at `sample_fps`, reading at most `max_seconds` of it."""
    path = Path(path)
    head = _check_file(path)
    if any(head.startswith(m) for m in _IMAGE_MAGIC):
        raise NotAVideoError(
            f"{path} is a still image, not a video; to enroll from photos use --photos with a folder"
        )
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        if looks_like_video(head):
            raise TruncatedVideoError(
                f"{path} looks like a video but cannot be opened: the file is probably truncated "
                "or still being written (an MP4 keeps its index at the end); record it again"
            )
        raise NotAVideoError(f"{path} is not a video OpenCV can read (MP4, MOV, WebM, AVI, ...)")
    try:
        return _sample(
            cap, str(path), "video", sample_fps, max_seconds, max_side_px, declared_check=True
        )
    finally:
        cap.release()


def read_live(
    source: int | str, sample_fps: float, capture_seconds: float, max_side_px: int = 1280
) -> SampledFrames:
    """Record `capture_seconds` from a camera index or an RTSP/HTTP URL, sampled at `sample_fps`."""
    kind = "camera" if isinstance(source, int) else "stream"
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        what = f"camera {source}" if kind == "camera" else f"stream {source}"
        raise CameraUnavailableError(
            f"cannot open {what}; check that it is connected, not in use, and the address is right"
        )
    try:
        return _sample(
            cap, str(source), kind, sample_fps, capture_seconds, max_side_px, declared_check=False
        )
    finally:
        cap.release()


def _sample(
    cap: cv2.VideoCapture,
    source: str,
    kind: str,
    sample_fps: float,
    max_seconds: float,
    max_side_px: int,
    declared_check: bool,
) -> SampledFrames:
    fps = cap.get(cv2.CAP_PROP_FPS)
    live = kind != "video"
    if not fps or fps <= 0 or fps > 240:
        fps = 30.0  # unknown rate: treat as a common camera rate
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if declared_check else 0
    last_s = 0.0
    step_s = 1.0 / sample_fps
    out = SampledFrames(source, kind, [], [], [], 0, 0.0)
    next_t = 0.0
    started = time.monotonic()
    while True:
        if live and (time.monotonic() - started) >= max_seconds:
            break
        if not cap.grab():
            break
        if not live:  # the decoded frame's own time stamp (variable-rate files: browsers' WebM)
            last_s = max(last_s, cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
        # A stream's own clock when it has one (RTSP, a file behind a URL); a camera's is often
        # 0, so fall back to wall time; a file counts frames at its declared rate.
        stream_t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if live else 0.0
        wall_t = time.monotonic() - started
        t = (stream_t if stream_t > 0 else wall_t) if live else out.frames_read / fps
        if t >= max_seconds:
            break
        out.frames_read += 1
        if t + 1e-9 >= next_t:
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                continue
            out.frames.append(_to_rgb(frame, max_side_px))
            out.frame_indices.append(out.frames_read - 1)
            out.times_s.append(t)
            next_t += step_s
    out.duration_s = (
        max(out.times_s[-1] + 1.0 / fps, 0.0)
        if live and out.times_s
        else max(out.frames_read / fps, last_s + 1.0 / fps if last_s else 0.0)
    )
    if out.frames_read == 0:
        if declared_check:
            raise TruncatedVideoError(f"{source} opened but not one frame could be decoded")
        raise CameraUnavailableError(f"{kind} {source} opened but delivered no frames")
    expected = min(declared, int(max_seconds * fps))
    # a variable-rate file (a browser's MediaRecorder WebM) holds fewer frames than its duration
    # times its nominal rate: it is truncated only when its time stamps also stop short
    reached = out.duration_s >= _MIN_DECODED_SHARE * min(declared / fps, max_seconds)
    short = out.frames_read < _MIN_DECODED_SHARE * expected
    if declared_check and declared > 1 and short and not reached:
        raise TruncatedVideoError(
            f"{source} is truncated or damaged: its header promises {declared} frames but decoding "
            f"stopped after {out.frames_read} ({out.duration_s:.1f} s); record or copy it again"
        )
    return out


def clip_frames(path: str | Path, max_frames: int = 10_000) -> list[np.ndarray]:
    """The first `max_frames` frames of a clip, every one, as RGB (evaluation and tests)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < max_frames:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def read_photos(
    folder: str | Path, max_side_px: int = 1280, max_pixels: int = 40_000_000
) -> SampledFrames:
    """Every readable photo in `folder` (not recursive); unreadable files, and files whose header
    declares more than `max_pixels` pixels (checked before decoding), are listed, not fatal."""
    folder = Path(folder)
    if not folder.exists():
        raise SourceNotFoundError(f"photo folder {folder} does not exist")
    if not folder.is_dir():
        raise SourceNotFoundError(f"{folder} is not a folder; use --video for a clip")
    out = SampledFrames(str(folder), "photos", [], [], [], 0, 0.0)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    for index, path in enumerate(files):
        if path.suffix.lower() not in PHOTO_SUFFIXES:
            out.skipped[path.name] = f"not a photo type ({', '.join(sorted(PHOTO_SUFFIXES))})"
            continue
        out.frames_read += 1
        try:
            image = read_image_file(path, max_pixels, cv2.IMREAD_UNCHANGED, label="")
        except FacegateError as error:
            out.skipped[path.name] = error.message
            continue
        if image.dtype != np.uint8:  # 16-bit PNG/TIFF
            image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
        out.frames.append(_to_rgb(image, max_side_px))
        out.frame_indices.append(index)
        out.times_s.append(0.0)
        out.names.append(path.name)
    if not out.frames:
        detail = "; ".join(f"{k}: {v}" for k, v in list(out.skipped.items())[:5])
        raise NoUsablePhotoError(
            f"no usable photo in {folder} ({len(files)} files"
            + (f"; {detail}" if detail else "")
            + ")"
        )
    return out
