"""Checks on what callers upload, before anything is decoded: size, declared type, and the file's
own signature (magic bytes). Each refusal is an ApiError with a stable code."""

import base64
import binascii
from pathlib import Path

import cv2
import numpy as np

from enroll.sources import looks_like_video
from facegate import images
from facegate.errors import FacegateError, ImageDecodeError
from facegate.images import image_kind

IMAGE_TYPES = {"image/jpeg", "image/png", "image/bmp", "image/webp"}
VIDEO_TYPES = {
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
    "video/x-msvideo",
    "video/avi",
}
GENERIC_TYPES = {"application/octet-stream", ""}


class ApiError(FacegateError):
    """An error the API answers with `status` and a stable `code`."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers


def check_declared(content_type: str | None, allowed: set[str], what: str) -> None:
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in allowed | GENERIC_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"{what} was sent as {declared!r}; accepted: {', '.join(sorted(allowed))}",
        )


def decode_image(data: bytes, max_bytes: int, label: str, max_pixels: int) -> np.ndarray:
    """An RGB frame from the bytes of a JPEG, PNG, BMP or WebP file: the size, the signature,
    then the pixel count its header declares are checked before anything is decoded."""
    if len(data) > max_bytes:
        raise ApiError(
            413, "payload_too_large", f"{label} is {len(data)} bytes; the limit is {max_bytes}"
        )
    if not data:
        raise ApiError(422, "empty_file", f"{label} is empty")
    if image_kind(data) not in ("jpeg", "png", "bmp", "webp"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"{label} is not a JPEG, PNG, BMP or WebP image (its first bytes say otherwise)",
        )
    try:
        image = images.decode_image(data, max_pixels, label)
    except images.TooManyPixelsError as error:
        raise ApiError(413, error.code, error.message) from None
    except ImageDecodeError as error:
        raise ApiError(422, error.code, error.message) from None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_base64(text: str, label: str) -> bytes:
    if not isinstance(text, str):
        raise ApiError(422, "invalid_request", f"{label} must be a base64 string")
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]  # a data: URL
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_base64", f"{label} is not valid base64") from None


def check_video_file(path: Path, label: str) -> None:
    """The file starts like a video container and OpenCV can decode a first frame from it."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        raise ApiError(422, "empty_file", f"{label} is empty")
    if not looks_like_video(head):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"{label} is not an MP4, MOV, WebM, MKV, AVI or MPEG video (its first bytes say "
            "otherwise)",
        )
    capture = cv2.VideoCapture(str(path))
    try:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
    finally:
        capture.release()
    if not ok or frame is None:
        raise ApiError(
            422, "not_a_video", f"{label} cannot be decoded as a video (damaged or truncated)"
        )
