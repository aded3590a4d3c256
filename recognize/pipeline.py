"""The face pipeline both enrollment and recognition use: detect, align, measure quality, embed."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facegate.device import resolve_device
from facegate.settings import Settings, get_settings
from recognize.align import align_face
from recognize.detect import DetectedFace, FaceDetector
from recognize.embed import Embedder, make_embedder
from recognize.quality import FaceQuality, measure_quality


@dataclass
class Face:
    """One detected face, aligned for the embedder, with its quality and (once embedded) vector."""

    frame_index: int
    detection: DetectedFace
    quality: FaceQuality
    crop: np.ndarray  # aligned RGB uint8, embedder.input_px square
    embedding: np.ndarray | None = None


class FacePipeline:
    """One object that chains detector, aligner and embedder; each stage is also callable alone.

    Keywords:
        settings: facegate settings (default: read from the environment).
        detector: a FaceDetector to use instead of one built from the settings.
        embedder: an Embedder to use instead of the one the settings name.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        detector: FaceDetector | None = None,
        embedder: Embedder | None = None,
    ):
        self.settings = settings or get_settings()
        self.device = resolve_device(self.settings.device)
        self.detector = detector or FaceDetector(
            device=self.device,
            min_face_px=self.settings.detect_min_face_px,
            max_side_px=self.settings.detect_max_side_px,
            batch_size=self.settings.detect_batch_size,
        )
        self.embedder = embedder or make_embedder(self.settings, device=self.device)

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        return self.detector.detect(frames)

    def align(self, frame: np.ndarray, face: DetectedFace, size: int | None = None) -> np.ndarray:
        """The aligned crop at `size` px (default: the embedder's input size)."""
        return align_face(
            frame, face.landmarks, size or self.embedder.input_px, self.embedder.template
        )

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return self.embedder.embed(crops)

    def analyze(self, frames: Sequence[np.ndarray], largest_only: bool = False) -> list[list[Face]]:
        """Every face of every RGB frame, aligned, measured and embedded (one embed call in all)."""
        detections = self.detect(frames)
        faces: list[list[Face]] = []
        for index, (frame, found) in enumerate(zip(frames, detections, strict=True)):
            found = found[:1] if largest_only else found
            faces.append(
                [Face(index, d, measure_quality(frame, d), self.align(frame, d)) for d in found]
            )
        flat = [f for per_frame in faces for f in per_frame]
        for face, vector in zip(flat, self.embed([f.crop for f in flat]), strict=True):
            face.embedding = vector
        return faces


def face_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a (N, D) and b (M, D), as (N, M)."""
    a = np.atleast_2d(a).astype(np.float64)
    b = np.atleast_2d(b).astype(np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))
