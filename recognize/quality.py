"""Per-face quality: detection probability, size, sharpness, brightness and a yaw estimate from landmarks."""

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from facegate.settings import Settings
from recognize.align import FACE_TEMPLATE, similarity_transform
from recognize.detect import DetectedFace

# Sharpness and brightness are read off one fixed aligned crop so they do not depend on the
# camera's resolution; only its centre counts (the corners are background).
QUALITY_CROP_PX = 150
_CENTRE = slice(30, 120)

# Nose-tip depth in front of the eye-mouth axis, in units of half the distance between the eyes
# (about 18 mm over 31 mm for an adult face). Turns the nose's sideways offset into an angle.
NOSE_DEPTH_RATIO = 0.6


@dataclass(frozen=True)
class FaceQuality:
    detection_prob: float
    face_px: float  # geometric mean of the detection box's sides, frame pixels
    sharpness: float  # variance of the Laplacian of the grey aligned crop's centre
    brightness: float  # mean grey level 0-255 of the aligned crop's centre
    yaw_deg: float  # > 0: nose points to the image's right; < 0: to the image's left
    visible_share: float  # share of the face's central region inside the frame (1.0: not cut off)

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in asdict(self).items()}


def estimate_yaw_deg(landmarks: np.ndarray) -> float:
    """Head yaw in degrees from 5 landmarks: the nose tip's offset from the eye-mouth axis.

    0 is frontal; the sign follows the image (positive when the nose points to the image's right).
    It is an estimate good to a few degrees near frontal and saturating towards profile.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_mid = (lm[0] + lm[1]) / 2.0
    mouth_mid = (lm[3] + lm[4]) / 2.0
    axis = mouth_mid - eye_mid
    norm = np.linalg.norm(axis)
    half_eyes = np.linalg.norm(lm[1] - lm[0]) / 2.0
    if norm < 1e-6 or half_eyes < 1e-6:
        return 0.0
    down = axis / norm
    image_right = np.array(
        [down[1], -down[0]]
    )  # the axis turned a quarter, towards +x when upright
    axis_mid = (eye_mid + mouth_mid) / 2.0
    offset = float(np.dot(lm[2] - axis_mid, image_right)) / half_eyes
    return float(np.degrees(np.arctan2(offset, NOSE_DEPTH_RATIO)))


def measure_quality(image: np.ndarray, face: DetectedFace) -> FaceQuality:
    """Quality of one detected face in its RGB frame."""
    m = similarity_transform(face.landmarks, FACE_TEMPLATE * QUALITY_CROP_PX)
    crop = cv2.warpAffine(
        image, m, (QUALITY_CROP_PX, QUALITY_CROP_PX), borderMode=cv2.BORDER_REPLICATE
    )
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[_CENTRE, _CENTRE]
    return FaceQuality(
        detection_prob=face.prob,
        face_px=face.size_px,
        sharpness=float(cv2.Laplacian(grey, cv2.CV_64F).var()),
        brightness=float(grey.mean()),
        yaw_deg=estimate_yaw_deg(face.landmarks),
        visible_share=_visible_share(m, image.shape[:2]),
    )


def _visible_share(m: np.ndarray, shape: tuple[int, int]) -> float:
    """Share of the face's central region (where sharpness and brightness are read) that lies
    inside the picture. MTCNN's box overshoots tight crops, so the box itself would mislead."""
    grid = np.arange(_CENTRE.start, _CENTRE.stop, 6, dtype=np.float64) + 0.5
    xs, ys = np.meshgrid(grid, grid)
    points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    inverse = cv2.invertAffineTransform(m)
    mapped = points @ inverse[:, :2].T + inverse[:, 2]
    h, w = shape
    inside = (mapped[:, 0] >= 0) & (mapped[:, 0] < w) & (mapped[:, 1] >= 0) & (mapped[:, 1] < h)
    return float(inside.mean())


def door_gate(settings: Settings) -> Settings:
    """The quality settings a door judges faces by: enrollment's, with the door's smallest face."""
    return settings.model_copy(update={"min_face_px": settings.recognize_min_face_px})


def quality_issue(q: FaceQuality, settings: Settings) -> str | None:
    """The first quality test a face fails ('low_confidence', 'too_small', 'cut_off', 'too_dark',
    'too_bright', 'blurred'), or None when it passes them all."""
    if q.detection_prob < settings.min_detection_prob:
        return "low_confidence"
    if q.face_px < settings.min_face_px:
        return "too_small"
    if q.visible_share < settings.min_visible_share:
        return "cut_off"
    if q.brightness < settings.min_brightness:
        return "too_dark"
    if q.brightness > settings.max_brightness:
        return "too_bright"
    if q.sharpness < settings.min_sharpness:
        return "blurred"
    return None
