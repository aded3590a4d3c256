"""Face detection with 5-point landmarks: facenet-pytorch's MTCNN, batched over frames, CPU or CUDA."""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN


@dataclass(frozen=True)
class DetectedFace:
    """One face in one frame, in that frame's pixel coordinates."""

    box: np.ndarray  # (4,) x0, y0, x1, y1
    prob: float  # MTCNN's face probability
    # (5, 2) x, y: eye on the image's left, eye on the image's right, nose tip,
    # mouth corner on the image's left, mouth corner on the image's right
    landmarks: np.ndarray

    @property
    def size_px(self) -> float:
        """Geometric mean of the box's width and height."""
        w = max(float(self.box[2] - self.box[0]), 0.0)
        h = max(float(self.box[3] - self.box[1]), 0.0)
        return float(np.sqrt(w * h))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x0, y0, x1, y1 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class FaceDetector:
    """MTCNN over RGB uint8 frames; frames of equal size go through one batched call.

    Keywords:
        device: torch device (default CPU).
        min_face_px: smallest face to find, in original frame pixels (default 40).
        max_side_px: frames are downscaled to this longest side before detection (default 960);
            boxes and landmarks come back in the original frame's pixels.
        batch_size: frames per MTCNN call (default 8).
    """

    def __init__(
        self,
        device: torch.device | str = "cpu",
        min_face_px: int = 40,
        max_side_px: int = 960,
        batch_size: int = 8,
    ):
        self.device = torch.device(device)
        self.min_face_px = min_face_px
        self.max_side_px = max_side_px
        self.batch_size = batch_size
        self._mtcnn: dict[int, MTCNN] = {}

    def _model(self, min_face: int) -> MTCNN:
        # MTCNN's image pyramid depends on min_face_size, so keep one per value in use.
        if min_face not in self._mtcnn:
            self._mtcnn[min_face] = MTCNN(
                keep_all=True, min_face_size=min_face, device=self.device, select_largest=False
            )
        return self._mtcnn[min_face]

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Faces of every frame, each frame's list sorted by size, largest first."""
        results: list[list[DetectedFace]] = [[] for _ in frames]
        start = 0
        while start < len(frames):
            # a batch is a run of consecutive frames of one size (a clip is one run)
            shape = frames[start].shape
            end = start + 1
            while (
                end < len(frames) and end - start < self.batch_size and frames[end].shape == shape
            ):
                end += 1
            for offset, faces in enumerate(self._detect_same_size(frames[start:end])):
                results[start + offset] = faces
            start = end
        return results

    def _detect_same_size(self, frames: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        h, w = frames[0].shape[:2]
        scale = min(1.0, self.max_side_px / max(h, w))
        if scale < 1.0:
            size = (round(w * scale), round(h * scale))
            batch = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
        else:
            batch = np.stack(frames)
        min_face = max(12, round(self.min_face_px * scale))
        if min(batch.shape[1:3]) < min_face:
            # smaller than the smallest face looked for: MTCNN's pyramid would be empty
            return [[] for _ in frames]
        model = self._model(min_face)
        with torch.inference_mode():
            boxes, probs, landmarks = model.detect(batch, landmarks=True)
        out: list[list[DetectedFace]] = []
        for b, p, lm in zip(boxes, probs, landmarks, strict=True):
            if b is None:
                out.append([])
                continue
            # facenet-pytorch returns object arrays under numpy 2; make them plain floats
            b = np.asarray(b, dtype=np.float64) / scale
            lm = np.asarray(lm, dtype=np.float64) / scale
            p = np.asarray(p, dtype=np.float64)
            faces = [DetectedFace(b[i], float(p[i]), lm[i]) for i in range(len(b))]
            out.append(sorted(faces, key=lambda f: f.size_px, reverse=True))
        return out
