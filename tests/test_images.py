"""Pictures are checked before they are decoded: the size each header declares is read from a few
bytes, so a small file that declares a huge picture (a pixel bomb) is refused without being
decoded, in the API, the command line and enrollment from photos alike."""

import struct
import zlib

import cv2
import numpy as np
import pytest

from enroll.sources import read_photos
from facegate.errors import ImageDecodeError
from facegate.images import TooManyPixelsError, declared_size, decode_image, read_image_file
from recognize.detect import FaceDetector


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int, height: int, rows: int = 1) -> bytes:
    """A PNG declaring width x height grey pixels, holding `rows` rows of zeros."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\0" * (rows * (width + 1)), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def bomb_jpeg(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is rewritten to declare width x height."""
    ok, data = cv2.imencode(".jpg", np.full((8, 8, 3), 128, np.uint8))
    assert ok
    data = bytearray(data.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_declared_sizes_match_what_opencv_decodes_on_real_photos(data, tmp_path):
    photos = sorted((data / "celeba_wild").glob("*/*.jpg"))[:20]
    assert len(photos) == 20
    for path in photos:
        raw = path.read_bytes()
        image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        assert declared_size(raw) == (image.shape[1], image.shape[0]), path.name
    image = cv2.imread(str(photos[0]))
    for ext in (".png", ".bmp", ".webp", ".tiff", ".ppm", ".pgm"):
        ok, encoded = cv2.imencode(ext, image if ext != ".pgm" else image[..., 0])
        assert ok, ext
        assert declared_size(encoded.tobytes()) == (image.shape[1], image.shape[0]), ext
    ok, lossless = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert declared_size(lossless.tobytes()) == (image.shape[1], image.shape[0])


def test_pixel_bombs_are_refused_before_decoding():
    for bomb in (bomb_png(40_000, 40_000), bomb_jpeg(30_000, 30_000), bomb_jpeg(65_000, 65_000)):
        assert len(bomb) < 1_000
        with pytest.raises(TooManyPixelsError, match="the limit is 40,000,000"):
            decode_image(bomb, 40_000_000, "upload")
    # under the limit, the same kind of file decodes (a 1,000,000 x 1 strip)
    strip = decode_image(bomb_png(1_000_000, 1), 40_000_000, "strip", cv2.IMREAD_GRAYSCALE)
    assert strip.shape == (1, 1_000_000)
    with pytest.raises(ImageDecodeError, match="declares no readable size"):
        decode_image(b"\xff\xd8\xff\xe0" + b"\0" * 40, 40_000_000, "garbage")
    with pytest.raises(ImageDecodeError, match="damaged or truncated"):
        decode_image(bomb_png(64, 64, rows=0), 40_000_000, "no pixel data")


def test_photo_enrollment_skips_a_bomb_and_reads_a_tiny_photo(data, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted((data / "celeba_wild").glob("*/*.jpg"))[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "bomb.png").write_bytes(bomb_png(20_000, 20_000))
    cv2.imwrite(str(folder / "one_px.png"), np.zeros((1, 1, 3), np.uint8))
    read = read_photos(folder, max_pixels=40_000_000)
    assert "bomb.png" in read.skipped and "20000x20000" in read.skipped["bomb.png"]
    assert str(tmp_path) not in read.skipped["bomb.png"]  # the file's name, not its folder
    assert len(read.frames) == 4 and "one_px.png" in read.names
    with pytest.raises(TooManyPixelsError):
        read_image_file(folder / "bomb.png", 40_000_000)


def test_the_detector_finds_nothing_in_frames_smaller_than_a_face():
    detector = FaceDetector(min_face_px=60)
    sizes = ((1, 1), (48, 48), (40, 640), (4000, 5), (59, 2000))
    found = detector.detect([np.full((h, w, 3), 127, np.uint8) for h, w in sizes])
    assert found == [[] for _ in sizes]
