"""What a door decision is: the answer, its reason, each stage's score, the candidates, the
quality and the timings (recognize/recognizer.py makes them, recognize/report.py renders them)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from recognize.levels import LevelTable
from recognize.liveness import HeadTurn
from recognize.quality import FaceQuality

DECISIONS = ("grant", "unknown", "spoof_suspected", "no_face", "poor_quality", "not_authorized")


@dataclass
class StageResult:
    name: str
    passed: bool | None  # None: the stage did not decide anything
    score: float | None = None
    threshold: float | None = None
    detail: str = ""


@dataclass
class CandidateScore:
    person_id: int
    display_name: str
    distance: float  # to the person's nearest real sample, in the embedder's metric
    embedding_logit: float
    personal_logit: float | None  # None: the person has no personal discriminator
    fused: float
    probability: float
    level: int  # the highest level the fused score passes (0: none)
    contributions: dict[str, float] | None = None  # each fusion term's share (None: no fusion)
    unavailable: str | None = None  # why a stored personal discriminator was not used


@dataclass
class AccessDecision:
    decision: str  # one of DECISIONS
    reason: str
    door: str | None
    required_level: int
    door_id: int | None = None
    person_id: int | None = None
    display_name: str | None = None
    probability: float | None = None
    level: int | None = None
    candidates: list[CandidateScore] = field(default_factory=list)
    stages: list[StageResult] = field(default_factory=list)
    quality: FaceQuality | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    face_crop: np.ndarray | None = None  # the aligned crop the decision was made on
    frames: int = 0
    frame_index: int | None = None
    levels: LevelTable | None = None
    head_turn: HeadTurn | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    event_id: int | None = None

    @property
    def granted(self) -> bool:
        return self.decision == "grant"
