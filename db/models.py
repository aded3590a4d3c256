"""SQLAlchemy models: persons and their biometrics, model artifacts, jobs, doors, keys, policies, events."""

from datetime import UTC, datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class StoreState(Base):
    """One row: the version of the biometric data, bumped by every enrollment and deletion in the
    same transaction, so a persisted index can say which state of the database it reflects."""

    __tablename__ = "store_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class Person(Base):
    __tablename__ = "persons"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    samples: Mapped[list["FaceSample"]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )
    artifacts: Mapped[list["ModelArtifact"]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )
    groups: Mapped[list["PersonGroup"]] = relationship(
        secondary="group_members", back_populates="members"
    )

    # ids are never reused (SQLite would reuse the highest after a deletion): an old index entry,
    # cached model or audit reference must never point at a different person
    __table_args__ = (
        CheckConstraint("status in ('active', 'suspended')", name="person_status"),
        {"sqlite_autoincrement": True},
    )


class FaceSample(Base):
    """One embedded face of a person: a real enrollment frame or an identity-checked GAN sample."""

    __tablename__ = "face_samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian, `dim` values
    dim: Mapped[int] = mapped_column(Integer)
    embedder: Mapped[str] = mapped_column(String(40))
    embedder_version: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(20))  # real | synthetic
    quality: Mapped[dict | None] = mapped_column(JSON)
    yaw_deg: Mapped[float | None] = mapped_column(Float)
    frame_index: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    person: Mapped[Person] = relationship(back_populates="samples")

    __table_args__ = (CheckConstraint("source in ('real', 'synthetic')", name="sample_source"),)


class ModelArtifact(Base):
    """A stored model: a person's generator or personal discriminator, or the general discriminator;
    or a person's real 64 px crops with their embeddings (kind 'real_crops').
    The bytes live in the artifact store at `path` (or inline in `data`); `sha256` guards them."""

    __tablename__ = "model_artifacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    person: Mapped[Person | None] = relationship(back_populates="artifacts")

    __table_args__ = (
        CheckConstraint(
            "kind in ('generator', 'personal_discriminator', 'general_discriminator', "
            "'real_crops')",
            name="artifact_kind",
        ),
        CheckConstraint("(path is null) <> (data is null)", name="artifact_path_xor_data"),
    )


class EnrollmentJob(Base):
    __tablename__ = "enrollment_jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    display_name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(500))
    external_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    stage: Mapped[str | None] = mapped_column(String(60))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error_code: Mapped[str | None] = mapped_column(String(60))
    error: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict | None] = mapped_column(JSON)  # the enrollment report once succeeded
    sample_grid: Mapped[bytes | None] = mapped_column(LargeBinary)  # PNG of GAN samples
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        CheckConstraint(
            "status in ('queued', 'running', 'succeeded', 'failed')", name="job_status"
        ),
    )


class Door(Base):
    __tablename__ = "doors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(String(500))
    required_level: Mapped[int] = mapped_column(Integer, default=6)
    require_liveness: Mapped[bool] = mapped_column(Boolean, default=False)
    # where the door's camera sees the person to decide on: x0, y0, x1, y1 as shares of the frame
    region: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the door's own webhook receiver (besides the service's), and the secret that signs for it
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (CheckConstraint("required_level between 1 and 10", name="door_level"),)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; `prefix` lets people tell keys apart."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list] = mapped_column(JSON)
    door_id: Mapped[int | None] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PersonGroup(Base):
    __tablename__ = "person_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    members: Mapped[list[Person]] = relationship(secondary="group_members", back_populates="groups")


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[int] = mapped_column(
        ForeignKey("person_groups.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True
    )


class AccessPolicy(Base):
    """Who (a person or a group) may open which door, on which weekdays, between which times."""

    __tablename__ = "access_policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    door_id: Mapped[int] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("person_groups.id", ondelete="CASCADE"))
    weekdays: Mapped[str] = mapped_column(String(7), default="0123456")  # Monday = 0
    start_time: Mapped[time | None] = mapped_column(Time)
    end_time: Mapped[time | None] = mapped_column(Time)
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "(person_id is null) <> (group_id is null)", name="policy_person_xor_group"
        ),
    )


class AccessEvent(Base):
    """One door decision. Deleting the person keeps time, door and decision, and drops the
    biometric data (person link, report face data, query image)."""

    __tablename__ = "access_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    door_id: Mapped[int | None] = mapped_column(
        ForeignKey("doors.id", ondelete="SET NULL"), index=True
    )
    decision: Mapped[str] = mapped_column(String(30))
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("persons.id", ondelete="SET NULL"), index=True
    )
    probability: Mapped[float | None] = mapped_column(Float)
    level: Mapped[int | None] = mapped_column(Integer)
    report: Mapped[dict | None] = mapped_column(JSON)
    latency_ms: Mapped[dict | None] = mapped_column(JSON)
    query_image: Mapped[bytes | None] = mapped_column(LargeBinary)
    biometrics_erased: Mapped[bool] = mapped_column(Boolean, default=False)


Index("ix_access_events_decision_time", AccessEvent.decision, AccessEvent.created_at)


class WebhookDelivery(Base):
    """The outbox: one webhook delivery of one access event to one receiver, written in the
    event's own transaction and kept until it is delivered or given up on, so a restart loses
    none. `door_id` set: the door's receiver and secret (removed with the door); unset: the
    service's (FACEGATE_WEBHOOK_URL)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("access_events.id", ondelete="CASCADE"), index=True
    )
    door_id: Mapped[int | None] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # when it may next be tried; a sender claims a delivery by moving this forward
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("state in ('pending', 'delivered', 'failed')", name="delivery_state"),
        Index("ix_webhook_deliveries_state_id", "state", "id"),
    )


class LevelCalibration(Base):
    """The 1-10 security-level table: for each level, the fused-score threshold whose estimated
    false-match rate meets the level's target, measured on impostor trials (recognize/levels.py).
    The newest row per embedder is the one in force; older rows stay for the audit trail."""

    __tablename__ = "level_calibrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    embedder: Mapped[str] = mapped_column(String(40), index=True)
    source: Mapped[str] = mapped_column(String(500))
    impostor_trials: Mapped[int] = mapped_column(Integer)
    table: Mapped[dict] = mapped_column(JSON)
