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

    def event(self, event_id: int) -> dict:
        """The access event as the API answers it and as webhooks and MQTT publish it."""
        person = None
        if self.person_id is not None:
            person = {"id": self.person_id, "display_name": self.display_name}
        return {
            "type": "access_event",
            "created_at": self.created_at.isoformat(),
            "event_id": event_id,
            "door": self.door,
            "decision": self.decision,
            "granted": self.granted,
            "reason": self.reason,
            "person": person,
            "level": self.level,
            "required_level": self.required_level,
            "probability": self.probability,
            "latency_ms": self.latency_ms,
            "report_url": f"/v1/events/{event_id}/report",
            "report_html_url": f"/v1/events/{event_id}/report.html",
        }
