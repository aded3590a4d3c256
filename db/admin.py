"""What an administrator manages beside the biometrics: API keys, enrollment jobs, the person
records' names, doors and policies, and the audit log's queries. Mixed into `Store`."""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.access import DoorNotFoundError, InvalidDoorError, _aware
from db.engine import detached
from db.models import (
    AccessEvent,
    AccessPolicy,
    ApiKey,
    Door,
    EnrollmentJob,
    FaceSample,
    Person,
    utcnow,
)
from facegate.errors import FacegateError
from facegate.validation import check_display_name, like_pattern

SCOPES = ("admin", "door", "audit")  # audit: read events and reports; door: one door's access
JOB_STATES = ("queued", "running", "succeeded", "failed")
KEY_PREFIX = "fg_"


class PersonNotFoundError(FacegateError):
    code = "person_not_found"


class InvalidKeyError(FacegateError):
    """A key cannot be created as asked (scope, door, name)."""

    code = "invalid_key_request"


class KeyNotFoundError(FacegateError):
    code = "api_key_not_found"


class JobNotFoundError(FacegateError):
    code = "job_not_found"


class PolicyNotFoundError(FacegateError):
    code = "policy_not_found"


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    prefix: str
    scope: str
    door_id: int | None
    door: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key_info(key: ApiKey, door: str | None) -> KeyInfo:
    return KeyInfo(
        key.id,
        key.name,
        key.prefix,
        key.scopes[0],
        key.door_id,
        door,
        key.created_at,
        key.last_used_at,
        key.revoked_at,
    )


class AdminRecords:
    """API keys, jobs, person records, doors, policies, event queries; `sessions` is the store's."""

    sessions: sessionmaker[Session]

    # --- API keys -------------------------------------------------------------------------------

    def create_key(self, name: str, scope: str, door: str | None = None) -> tuple[str, KeyInfo]:
        """A new key: the secret (shown once, only its SHA-256 is stored) and its record. A door
        key names its door and opens nothing else."""
        if scope not in SCOPES:
            raise InvalidKeyError(f"a key's scope is one of {', '.join(SCOPES)}; got {scope!r}")
        if (scope == "door") != (door is not None):
            raise InvalidKeyError("a door key names exactly one door; other scopes name none")
        if not name.strip():
            raise InvalidKeyError("a key needs a name (who or what holds it)")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.sessions.begin() as session:
            door_id = None
            if door is not None:
                door_id = session.scalar(select(Door.id).where(Door.name == door))
                if door_id is None:
                    raise DoorNotFoundError(f"no door named {door!r}; create it first")
            key = ApiKey(
                name=name.strip()[:100],
                prefix=secret[: len(KEY_PREFIX) + 6],
                key_hash=hash_key(secret),
                scopes=[scope],
                door_id=door_id,
            )
            session.add(key)
            session.flush()
            return secret, _key_info(key, door)

    def authenticate(self, secret: str) -> KeyInfo | None:
        """The live key whose secret this is, or None. The lookup is by SHA-256 and the stored
        hash is compared again in constant time; use is stamped at most once a minute."""
        digest = hash_key(secret)
        with self.sessions() as session:
            row = session.execute(
                select(ApiKey, Door.name).outerjoin(Door).where(ApiKey.key_hash == digest)
            ).first()
            if row is None:
                return None
            key, door = row
            if not hmac.compare_digest(key.key_hash, digest) or key.revoked_at is not None:
                return None
            info = _key_info(key, door)
        now = utcnow()
        last = info.last_used_at
        if last is None or _aware(last) < now - timedelta(minutes=1):
            with self.sessions.begin() as session:
                session.execute(update(ApiKey).where(ApiKey.id == info.id).values(last_used_at=now))
        return info

    def api_keys(self) -> list[KeyInfo]:
        with self.sessions() as session:
            rows = session.execute(select(ApiKey, Door.name).outerjoin(Door).order_by(ApiKey.id))
            return [_key_info(k, d) for k, d in rows]

    def revoke_key(self, key_id: int) -> KeyInfo:
        with self.sessions.begin() as session:
            key = session.get(ApiKey, key_id)
            if key is None:
                raise KeyNotFoundError(f"no API key {key_id}")
            if key.revoked_at is None:
                key.revoked_at = utcnow()
            door = session.scalar(select(Door.name).where(Door.id == key.door_id))
            return _key_info(key, door)

    # --- enrollment jobs -------------------------------------------------------------------------

    def create_job(self, display_name: str, source: str, external_id: str | None = None) -> str:
        job_id = str(uuid.uuid4())
        with self.sessions.begin() as session:
            session.add(
                EnrollmentJob(
                    id=job_id,
                    display_name=display_name,
                    source=source[:500],
                    external_id=external_id,
                    stage="queued",
                )
            )
        return job_id

    def update_job(self, job_id: str, **values) -> None:
        """Set job columns (status, stage, progress, person_id, error_code, error, metrics,
        sample_grid); also stamps updated_at, which is the job's heartbeat."""
        unknown = set(values) - {
            "status",
            "stage",
            "progress",
            "person_id",
            "error_code",
            "error",
            "metrics",
            "sample_grid",
        }
        if unknown:
            raise ValueError(f"not job columns: {sorted(unknown)}")
        if values.get("status") not in (None, *JOB_STATES):
            raise ValueError(f"unknown job status {values['status']!r}")
        with self.sessions.begin() as session:
            done = session.execute(
                update(EnrollmentJob)
                .where(EnrollmentJob.id == job_id)
                .values(**values, updated_at=utcnow())
            ).rowcount
        if not done:
            raise JobNotFoundError(f"no enrollment job {job_id}")

    def job(self, job_id: str) -> EnrollmentJob:
        with self.sessions() as session:
            job = session.get(EnrollmentJob, job_id)
            if job is None:
                raise JobNotFoundError(f"no enrollment job {job_id}")
            session.expunge(job)
            return job

    def jobs(
        self, status: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[EnrollmentJob]:
        query = select(EnrollmentJob).order_by(EnrollmentJob.created_at.desc())
        if status is not None:
            query = query.where(EnrollmentJob.status == status)
        with self.sessions() as session:
            jobs = list(session.scalars(query.offset(offset).limit(limit)))
            session.expunge_all()
            return jobs

    def fail_jobs(
        self, reason: str, stale_seconds: float | None = None, now: datetime | None = None
    ) -> int:
        """Mark unfinished jobs failed with `reason`: all of them (a restart of the only worker),
        or those whose heartbeat is older than `stale_seconds`. Returns how many."""
        query = update(EnrollmentJob).where(EnrollmentJob.status.in_(("queued", "running")))
        if stale_seconds is not None:
            cutoff = (now or utcnow()) - timedelta(seconds=stale_seconds)
            query = query.where(EnrollmentJob.updated_at < cutoff)
        with self.sessions.begin() as session:
            return session.execute(
                query.values(
                    status="failed",
                    stage="interrupted",
                    error_code="job_interrupted",
                    error=reason,
                    updated_at=utcnow(),
                )
            ).rowcount

    # --- person records -----------------------------------------------------------------------

    def person(self, person_id: int) -> tuple[Person, int]:
        """The person with their sample count."""
        with self.sessions() as session:
            row = session.execute(
                select(Person, func.count(FaceSample.id))
                .outerjoin(FaceSample)
                .where(Person.id == person_id)
                .group_by(Person.id)
            ).first()
            if row is None:
                raise PersonNotFoundError(f"no person with id {person_id}")
            return row[0], row[1]

    def find_persons(
        self, search: str | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[int, list[tuple[Person, int]]]:
        """Persons whose name or external id contains `search` (case-insensitive), by id, with
        their sample counts; and how many match in all."""
        where = []
        if search:
            pattern = like_pattern(search.lower())
            where.append(
                or_(
                    func.lower(Person.display_name).like(pattern, escape="\\"),
                    func.lower(Person.external_id).like(pattern, escape="\\"),
                )
            )
        with self.sessions() as session:
            total = session.scalar(select(func.count(Person.id)).where(*where))
            rows = session.execute(
                select(Person, func.count(FaceSample.id))
                .outerjoin(FaceSample)
                .where(*where)
                .group_by(Person.id)
                .order_by(Person.id)
                .offset(offset)
                .limit(limit)
            ).all()
        return total, [(p, n) for p, n in rows]

    def rename_person(self, person_id: int, display_name: str) -> None:
        display_name = check_display_name(display_name)
        with self.sessions.begin() as session:
            person = session.get(Person, person_id)
            if person is None:
                raise PersonNotFoundError(f"no person with id {person_id}")
            person.display_name = display_name

    # --- doors and policies ------------------------------------------------------------------

    def doors(self) -> list[Door]:
        return detached(self.sessions, select(Door).order_by(Door.id))

    def delete_door(self, name: str) -> None:
        """Remove a door with its policies and keys; its past events keep their record."""
        with self.sessions.begin() as session:
            door = session.scalars(select(Door).where(Door.name == name)).first()
            if door is None:
                raise DoorNotFoundError(f"no door named {name!r}")
            session.execute(delete(AccessPolicy).where(AccessPolicy.door_id == door.id))
            session.execute(delete(ApiKey).where(ApiKey.door_id == door.id))
            session.delete(door)

    def policies(self, door_id: int | None = None) -> list[AccessPolicy]:
        query = select(AccessPolicy).order_by(AccessPolicy.id)
        if door_id is not None:
            query = query.where(AccessPolicy.door_id == door_id)
        return detached(self.sessions, query)

    def delete_policy(self, policy_id: int) -> None:
        with self.sessions.begin() as session:
            if not session.execute(
                delete(AccessPolicy).where(AccessPolicy.id == policy_id)
            ).rowcount:
                raise PolicyNotFoundError(f"no access policy {policy_id}")

    def check_person_exists(self, person_id: int) -> None:
        with self.sessions() as session:
            if session.get(Person, person_id) is None:
                raise PersonNotFoundError(f"no person with id {person_id}")

    # --- the audit log ------------------------------------------------------------------------

    def events(
        self,
        door_id: int | None = None,
        person_id: int | None = None,
        decision: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[int, list[AccessEvent]]:
        """Events newest first, filtered; and how many match in all. Reports and images are not
        loaded (ask `event(id)` for one)."""
        where = []
        if door_id is not None:
            where.append(AccessEvent.door_id == door_id)
        if person_id is not None:
            where.append(AccessEvent.person_id == person_id)
        if decision is not None:
            where.append(AccessEvent.decision == decision)
        if since is not None:
            where.append(AccessEvent.created_at >= _utc(since))
        if until is not None:
            where.append(AccessEvent.created_at < _utc(until))
        columns = (
            AccessEvent.id,
            AccessEvent.created_at,
            AccessEvent.door_id,
            AccessEvent.decision,
            AccessEvent.person_id,
            AccessEvent.probability,
            AccessEvent.level,
            AccessEvent.latency_ms,
            AccessEvent.biometrics_erased,
        )
        with self.sessions() as session:
            total = session.scalar(select(func.count(AccessEvent.id)).where(*where))
            rows = session.execute(
                select(*columns)
                .where(*where)
                .order_by(AccessEvent.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return total, [AccessEvent(**row._asdict()) for row in rows]

    def job_count(self, status: str | None = None) -> int:
        query = select(func.count(EnrollmentJob.id))
        if status is not None:
            query = query.where(EnrollmentJob.status == status)
        with self.sessions() as session:
            return session.scalar(query)

    def door_names(self) -> dict[int, str]:
        with self.sessions() as session:
            return dict(session.execute(select(Door.id, Door.name)).all())


def _utc(moment: datetime) -> datetime:
    """Times are stored in UTC (SQLite keeps them naive): compare in UTC; naive input is UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


__all__ = [
    "SCOPES",
    "AdminRecords",
    "InvalidDoorError",
    "InvalidKeyError",
    "JobNotFoundError",
    "KeyInfo",
    "KeyNotFoundError",
    "PersonNotFoundError",
    "PolicyNotFoundError",
]
