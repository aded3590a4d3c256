"""Pictures checked before they are decoded, for the API and the command line alike: the file's
signature, then the width and height its header declares (a few bytes), refused above the pixel
limit before one pixel is decoded. A 631-byte JPEG can declare 30000x30000 pixels: decoded, that
is 2.7 GB."""

import struct
from pathlib import Path

import cv2
import numpy as np

from facegate.errors import FacegateError, ImageDecodeError


class TooManyPixelsError(ImageDecodeError):
    """The header declares more pixels than the limit allows."""

    code = "too_many_pixels"


def image_kind(data: bytes) -> str | None:
    """The format the leading bytes announce, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:2] in (b"P2", b"P3", b"P5", b"P6"):
        return "pnm"
    return None


# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic), which carry the size
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header
            return None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return (
            int.from_bytes(data[24:27], "little") + 1,
            int.from_bytes(data[27:30], "little") + 1,
        )
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        size: dict[int, int] = {}
        for n in range(count):
            at = offset + 2 + 12 * n
            tag, kind = struct.unpack(order + "HH", data[at : at + 4])
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
                fmt = order + ("H" if kind == 3 else "I")
                size[tag] = struct.unpack(fmt, data[at + 8 : at + 8 + struct.calcsize(fmt)])[0]
        return (size[256], size[257]) if len(size) == 2 else None
    except (struct.error, KeyError):
        return None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    words: list[int] = []
    for line in data[2:512].split(b"\n"):
        line = line.split(b"#")[0]
        for word in line.split():
            if not word.isdigit():
                return None
            words.append(int(word))
            if len(words) == 2:
                return words[0], words[1]
    return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the header declares them, or None when it cannot be read."""
    kind = image_kind(data)
    if kind == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    if kind == "bmp" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    readers = {"jpeg": _jpeg_size, "webp": _webp_size, "tiff": _tiff_size, "pnm": _pnm_size}
    return readers[kind](data) if kind in readers else None


def _said(label: str, text: str) -> str:
    return f"{label}: {text}" if label else text


def check_pixels(data: bytes, max_pixels: int, label: str) -> tuple[int, int]:
    """The declared (width, height), refused when unreadable, empty or over `max_pixels`."""
    size = declared_size(data)
    if size is None:
        raise ImageDecodeError(
            _said(label, "cannot be decoded: its header declares no readable size (damaged?)")
        )
    width, height = size
    if width < 1 or height < 1:
        raise ImageDecodeError(_said(label, f"declares {width}x{height} pixels"))
    if width * height > max_pixels:
        raise TooManyPixelsError(
            _said(
                label,
                f"declares {width}x{height} = {width * height:,} pixels; the limit is "
                f"{max_pixels:,} (FACEGATE_MAX_IMAGE_PIXELS)",
            )
        )
    return width, height


def decode_image(data: bytes, max_pixels: int, label: str, flags=cv2.IMREAD_COLOR) -> np.ndarray:
    """The picture's pixels as OpenCV decodes them (BGR for IMREAD_COLOR), after the checks."""
    if not data:
        raise ImageDecodeError(_said(label, "the file is empty"))
    check_pixels(data, max_pixels, label)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as error:  # OpenCV's own limits and assertions
        reason = error.err or "OpenCV error"
        raise ImageDecodeError(_said(label, f"cannot be decoded ({reason})")) from None
    if image is None or image.size == 0:
        raise ImageDecodeError(_said(label, "cannot be decoded (damaged or truncated)"))
    return image


def read_image_file(
    path: Path, max_pixels: int, flags=cv2.IMREAD_COLOR, label: str | None = None
) -> np.ndarray:
    """A picture file through the same checks. Messages start with `label` (default: the file's
    name, never its folder; "" for none)."""
    label = Path(path).name if label is None else label
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise FacegateError(_said(label, f"cannot be read ({error.strerror})")) from None
    if data and image_kind(data) is None:
        raise ImageDecodeError(
            _said(label, "cannot be decoded (empty, damaged or not really an image)")
        )
    return decode_image(data, max_pixels, label, flags)
