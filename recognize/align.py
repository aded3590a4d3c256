"""Alignment: a similarity transform from MTCNN's 5 landmarks to a fixed template, crops at any size."""

import cv2
import numpy as np

# Where MTCNN's five landmarks fall in dlib's face chip (dlib.get_face_chip, padding 0.25), as
# fractions of the chip's side. Measured, not guessed: dlib's own 5-point alignment on 79 CelebA
# faces, MTCNN re-run on each chip, the mean position, then mirrored to be left-right symmetric
# (per-point spread 0.02-0.05). Aligning to it feeds dlib's ResNet the geometry it was trained on,
# and the same framing at 64 px gives the GAN whole faces with a little context.
FACE_TEMPLATE = np.array(
    [
        [0.3181, 0.2999],  # eye on the image's left
        [0.6819, 0.2999],  # eye on the image's right
        [0.5000, 0.5292],  # nose tip
        [0.3407, 0.6890],  # mouth corner, image left
        [0.6593, 0.6890],  # mouth corner, image right
    ]
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation taking src points onto dst (Umeyama), as 2x3."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0  # no reflections
    rot = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / src_c.var(0).sum()
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = dst_mean - m[:, :2] @ src_mean
    return m


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int, template: np.ndarray = FACE_TEMPLATE
) -> np.ndarray:
    """The face at `landmarks` (5x2, image pixels) warped onto `template`, as a size x size crop."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    m = similarity_transform(landmarks, template * size)
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    # Shrinking by more than 2x with bilinear sampling aliases; halve the region first.
    while scale < 0.5:
        x0, y0 = np.maximum(landmarks.min(0) - np.ptp(landmarks, axis=0) * 2, 0).astype(int)
        x1, y1 = (landmarks.max(0) + np.ptp(landmarks, axis=0) * 2).astype(int)
        image = cv2.pyrDown(image[y0:y1, x0:x1])
        landmarks = (landmarks - [x0, y0]) / 2.0
        m = similarity_transform(landmarks, template * size)
        scale = float(np.hypot(m[0, 0], m[0, 1]))
    return cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
