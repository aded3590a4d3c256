"""The API's request and response bodies (pydantic): what the OpenAPI schema documents, with
examples. Reports themselves are recognize.report's AccessReport."""

from datetime import UTC, datetime, time
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from facegate.validation import (
    DOOR_NAME_MAX,
    DOOR_NAME_PATTERN,
    WEEKDAYS_PATTERN,
    InvalidNameError,
    check_weekdays,
)
from recognize.decision import DECISIONS

Decision = Literal[DECISIONS]  # type: ignore[valid-type]


def _as_utc(value: datetime) -> datetime:
    """The store keeps UTC; SQLite hands it back without its zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# a stored time in a response: always UTC, written with its zone the same way on every route
Stamp = Annotated[datetime, AfterValidator(_as_utc)]
Scope = Literal["admin", "door", "audit"]


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable", examples=["door_not_found"])
    message: str = Field(
        description="What is wrong, for a person", examples=["no door named 'lobby'"]
    )


class ErrorResponse(BaseModel):
    error: ErrorBody


class Page(BaseModel):
    total: int = Field(description="Items matching, over all pages")
    offset: int
    limit: int


# --- persons -----------------------------------------------------------------------------------


class PersonOut(BaseModel):
    id: int = Field(examples=[12])
    display_name: str = Field(examples=["Ada Lovelace"])
    external_id: str | None = Field(examples=["EMP-0042"])
    status: str = Field(examples=["active"])
    samples: int = Field(description="Stored face embeddings (real and synthetic)")
    created_at: Stamp


class PersonPage(Page):
    items: list[PersonOut]


class PersonRename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str = Field(min_length=1, max_length=200, examples=["Ada King"])


class Deleted(BaseModel):
    deleted: int | str


# --- enrollment jobs ---------------------------------------------------------------------------


class JobOut(BaseModel):
    id: str = Field(examples=["4f7c1f0e-3b1a-4f0e-9d55-0b1d2a9e6c11"])
    display_name: str
    external_id: str | None
    source: str
    status: Literal["queued", "running", "succeeded", "failed"]
    stage: str | None = Field(examples=["personal GAN"])
    progress: float = Field(ge=0, le=1)
    person_id: int | None = Field(description="Set once the person is stored")
    error_code: str | None = Field(examples=[None, "insufficient_head_turn"])
    error: str | None
    created_at: Stamp
    updated_at: Stamp
    report_url: str | None = Field(description="The enrollment report, once succeeded")


class JobPage(Page):
    items: list[JobOut]


# --- doors, policies, keys -------------------------------------------------------------------


class DoorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1, max_length=DOOR_NAME_MAX, pattern=DOOR_NAME_PATTERN, examples=["lobby"]
    )
    required_level: int = Field(6, ge=1, le=10, description="1-10; level L means FMR 10^(-L/2)")
    require_liveness: bool = Field(
        False, description="Require a head-turn burst (3 or more frames)"
    )
    region: tuple[float, float, float, float] | None = Field(
        None, description="x0, y0, x1, y1 as shares of the frame: where the person stands"
    )
    description: str | None = Field(None, max_length=500)
    webhook_url: str | None = Field(
        None,
        max_length=2000,
        description="The door's own webhook receiver, besides the service's (http or https)",
        examples=["https://nvr.example/hooks/lobby"],
    )
    webhook_secret: str | None = Field(
        None,
        min_length=16,
        max_length=200,
        description="Signs the door's deliveries (X-Facegate-Signature); required with the URL, "
        "never shown again",
    )


class DoorWebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, examples=["https://nvr.example/hooks/lobby"])
    secret: str = Field(min_length=16, max_length=200)


class DoorOut(BaseModel):
    id: int
    name: str
    required_level: int
    require_liveness: bool
    region: list[float] | None
    description: str | None
    webhook_url: str | None = Field(description="The door's own webhook receiver, if any")
    created_at: Stamp


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: int = Field(ge=1, le=2**31 - 1)
    weekdays: str = Field(
        "0123456",
        pattern=WEEKDAYS_PATTERN,
        description="Digits, Monday = 0, each at most once",
        examples=["01234"],
    )
    start: time | None = Field(None, description="Local time the door opens for them")
    end: time | None = Field(None, description="Local time it closes for them")
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @field_validator("weekdays")
    @classmethod
    def _each_day_once(cls, value: str) -> str:
        try:
            return check_weekdays(value)
        except InvalidNameError as error:  # a validation error (422) with its message
            raise ValueError(error.message) from None


class PolicyOut(BaseModel):
    id: int
    door: str
    person_id: int | None
    group_id: int | None
    weekdays: str
    start: time | None
    end: time | None
    valid_from: datetime | None
    valid_until: datetime | None


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, examples=["lobby controller"])
    scope: Scope = Field(
        description="admin: everything; door: one door's access endpoint; audit: events, "
        "reports, metrics"
    )
    door: str | None = Field(None, description="The door a door key opens", examples=["lobby"])


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    scope: Scope
    door: str | None
    created_at: Stamp
    last_used_at: Stamp | None
    revoked_at: Stamp | None


class KeyCreated(KeyOut):
    key: str = Field(description="The secret: shown once, only its SHA-256 is stored")


# --- access and events ---------------------------------------------------------------------


class AccessImages(BaseModel):
    model_config = ConfigDict(extra="forbid")
    images: list[str] = Field(
        min_length=1, description="One image or a burst: base64 JPEG/PNG/BMP/WebP files"
    )


class PersonRef(BaseModel):
    id: int
    display_name: str


class AccessOut(BaseModel):
    event_id: int
    door: str
    decision: Decision = Field(examples=["grant"])
    granted: bool
    reason: str = Field(examples=["matched at level 7 (door needs 6); live"])
    person: PersonRef | None
    level: int | None = Field(description="The best candidate's level, 0-10")
    required_level: int
    probability: float | None = Field(description="Calibrated probability of the match")
    latency_ms: dict[str, float]
    report_url: str
    report_html_url: str


class EventOut(BaseModel):
    id: int
    created_at: Stamp
    door: str | None
    decision: str
    person_id: int | None
    probability: float | None
    level: int | None
    latency_ms: dict | None
    biometrics_erased: bool
    report_url: str


class EventPage(Page):
    items: list[EventOut]


class LevelRow(BaseModel):
    level: int
    target_fmr: float
    threshold: float
    probability: float
    estimated_fmr: float
    basis: str


class LevelsOut(BaseModel):
    source: str
    impostor_trials: int
    created_at: Stamp
    rows: list[LevelRow]


class EvaluationOut(BaseModel):
    created_at: Stamp
    summary_markdown: str
    seconds: float | None
    det_url: str


class Health(BaseModel):
    status: Literal["ok", "degraded", "not_ready"]
    checks: dict[str, str] = Field(default_factory=dict)
