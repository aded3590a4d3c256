"""Recognition: the shared face pipeline (detect, align, embed, quality), the shortlist, the batched
personal discriminators, fusion on the 1-10 security scale, the door decision and its report.
One call: `Recognizer(store).identify(frames, door)`."""

from recognize.align import FACE_TEMPLATE, align_face
from recognize.calibration import FaceSet, calibrate, face_set
from recognize.decision import DECISIONS, AccessDecision
from recognize.detect import DetectedFace, FaceDetector
from recognize.discriminators import PersonalDiscriminators
from recognize.embed import (
    DlibEmbedder,
    DlibNativeEmbedder,
    Embedder,
    FacenetEmbedder,
    make_embedder,
)
from recognize.levels import LevelTable, level_fmr
from recognize.pipeline import Face, FacePipeline, face_distance
from recognize.quality import FaceQuality, estimate_yaw_deg, measure_quality, quality_issue
from recognize.recognizer import Recognizer
from recognize.report import build_report, render_html, report_schema
from recognize.shortlist import Candidate, shortlist

__all__ = [
    "DECISIONS",
    "AccessDecision",
    "FaceSet",
    "LevelTable",
    "PersonalDiscriminators",
    "Recognizer",
    "build_report",
    "calibrate",
    "face_set",
    "level_fmr",
    "render_html",
    "report_schema",
    "Candidate",
    "FACE_TEMPLATE",
    "DetectedFace",
    "DlibEmbedder",
    "DlibNativeEmbedder",
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
