"""Recognition: the shared face pipeline (detect, align, embed, quality); later the shortlist,
the shortlist from the index; later the batched personal discriminators, fusion and the report."""

from recognize.align import FACE_TEMPLATE, align_face
from recognize.detect import DetectedFace, FaceDetector
from recognize.embed import DlibEmbedder, Embedder, FacenetEmbedder, make_embedder
from recognize.pipeline import Face, FacePipeline, face_distance
from recognize.quality import FaceQuality, estimate_yaw_deg, measure_quality, quality_issue
from recognize.shortlist import Candidate, shortlist

__all__ = [
    "Candidate",
    "FACE_TEMPLATE",
    "DetectedFace",
    "DlibEmbedder",
    "Embedder",
    "Face",
    "FaceDetector",
    "FacePipeline",
    "FaceQuality",
    "FacenetEmbedder",
    "align_face",
    "estimate_yaw_deg",
    "face_distance",
    "make_embedder",
    "measure_quality",
    "quality_issue",
    "shortlist",
]
