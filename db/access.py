"""Doors, who may pass them and when, the access events (the audit trail) and the security-level
calibration: the part of the store that recognition reads and writes. Mixed into `Store`."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import AccessEvent, AccessPolicy, Door, GroupMember, LevelCalibration, utcnow
from facegate.errors import FacegateError
from facegate.validation import check_door_name, check_weekdays


class DoorNotFoundError(FacegateError):
    code = "door_not_found"


class InvalidDoorError(FacegateError):
    code = "invalid_door"


class EventNotFoundError(FacegateError):
    code = "event_not_found"


@dataclass(frozen=True)
class DoorInfo:
    id: int
    name: str
    required_level: int
    require_liveness: bool
    region: tuple[float, float, float, float] | None  # x0, y0, x1, y1 as shares of the frame


def _door_info(door: Door) -> DoorInfo:
    region = tuple(float(v) for v in door.region) if door.region else None
    return DoorInfo(door.id, door.name, door.required_level, door.require_liveness, region)


def _check_region(region: tuple[float, ...] | None) -> list[float] | None:
    if region is None:
        return None
    values = [float(v) for v in region]
    if len(values) != 4 or not (
        0 <= values[0] < values[2] <= 1 and 0 <= values[1] < values[3] <= 1
    ):
        raise InvalidDoorError(
            f"a door region is x0, y0, x1, y1 as shares of the frame with 0 <= x0 < x1 <= 1 "
            f"and 0 <= y0 < y1 <= 1; got {region}"
        )
    return values


def _check_webhook(url: str | None, secret: str | None) -> None:
    if url is None and secret is None:
        return
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise InvalidDoorError(
            f"a door's webhook URL is http(s)://host/path, at most 2000 characters; got {url!r}"
        )
    if not secret or not 16 <= len(secret) <= 200:
        raise InvalidDoorError(
            "a door's webhook needs its own secret of 16-200 characters: receivers check "
            "X-Facegate-Signature with it"
        )


class AccessRecords:
    """Doors, policies, events and level tables; `sessions` is the store's sessionmaker."""

    sessions: sessionmaker[Session]

    # --- doors and policies -------------------------------------------------------------------

    def add_door(
        self,
        name: str,
        required_level: int = 6,
        require_liveness: bool = False,
        region: tuple[float, float, float, float] | None = None,
        description: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> DoorInfo:
        check_door_name(name)
        _check_webhook(webhook_url, webhook_secret)
        if not 1 <= required_level <= 10:
            raise InvalidDoorError(f"a door's required level is 1-10, got {required_level}")
        with self.sessions.begin() as session:
            if session.scalar(select(Door.id).where(Door.name == name)) is not None:
                raise InvalidDoorError(f"a door named {name!r} exists already")
            door = Door(
                name=name,
                required_level=required_level,
                require_liveness=require_liveness,
                region=_check_region(region),
                description=description,
                webhook_url=webhook_url,
                webhook_secret=webhook_secret,
            )
            session.add(door)
            session.flush()
            return _door_info(door)

    def set_door_webhook(self, name: str, url: str | None, secret: str | None) -> None:
        """The door's own webhook receiver and secret (None, None: none); deliveries already in
        the outbox keep the receiver they were written for."""
        _check_webhook(url, secret)
        with self.sessions.begin() as session:
            door = session.scalars(select(Door).where(Door.name == name)).first()
            if door is None:
                raise DoorNotFoundError(f"no door named {name!r}")
            door.webhook_url, door.webhook_secret = url, secret

    def door(self, name: str) -> DoorInfo:
        with self.sessions() as session:
            door = session.scalars(select(Door).where(Door.name == name)).first()
            if door is None:
                raise DoorNotFoundError(f"no door named {name!r}; create it first")
            return _door_info(door)

    def allow(
        self,
        door_id: int,
        person_id: int | None = None,
        group_id: int | None = None,
        weekdays: str = "0123456",
        start: time | None = None,
        end: time | None = None,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
    ) -> int:
        """A policy letting a person (or a group) through a door on `weekdays` (Monday = 0)
        between `start` and `end` local time; returns its id."""
        if (person_id is None) == (group_id is None):
            raise InvalidDoorError("a policy names either a person or a group")
        check_weekdays(weekdays)
        with self.sessions.begin() as session:
            policy = AccessPolicy(
                door_id=door_id,
                person_id=person_id,
                group_id=group_id,
                weekdays=weekdays,
                start_time=start,
                end_time=end,
                valid_from=valid_from,
                valid_until=valid_until,
            )
            session.add(policy)
            session.flush()
            return policy.id

    def authorized(self, person_id: int, door_id: int, when: datetime | None = None) -> bool:
        """Whether a policy lets the person through the door at `when` (default now, local)."""
        when = when or datetime.now().astimezone()
        groups = select(GroupMember.group_id).where(GroupMember.person_id == person_id)
        with self.sessions() as session:
            policies = session.scalars(
                select(AccessPolicy).where(
                    AccessPolicy.door_id == door_id,
                    or_(AccessPolicy.person_id == person_id, AccessPolicy.group_id.in_(groups)),
                )
            ).all()
        return any(_policy_open(p, when) for p in policies)

    # --- events ---------------------------------------------------------------------------------

    def record_event(
        self,
        decision: str,
        door_id: int | None,
        person_id: int | None,
        probability: float | None,
        level: int | None,
        report: dict,
        latency_ms: dict,
        query_image: bytes | None = None,
        webhook_body: Callable[[int], dict] | None = None,
    ) -> int:
        """The event's id. With `webhook_body` (event id -> the webhook's JSON), its webhook
        deliveries go into the outbox in the same transaction (db/outbox.py)."""
        with self.sessions.begin() as session:
            event = AccessEvent(
                decision=decision,
                door_id=door_id,
                person_id=person_id,
                probability=probability,
                level=level,
                report=report,
                latency_ms=latency_ms,
                query_image=query_image,
            )
            session.add(event)
            session.flush()
            if webhook_body is not None:
                event_id = event.id
                self.queue_deliveries(session, event_id, door_id, lambda: webhook_body(event_id))
            return event.id

    def event(self, event_id: int) -> AccessEvent:
        with self.sessions() as session:
            event = session.get(AccessEvent, event_id)
            if event is None:
                raise EventNotFoundError(f"no access event {event_id}")
            session.expunge(event)
            return event

    # --- the security-level table ------------------------------------------------------------

    def save_level_table(self, embedder: str, table: dict, source: str, trials: int) -> int:
        with self.sessions.begin() as session:
            row = LevelCalibration(
                embedder=embedder, table=table, source=source[:500], impostor_trials=trials
            )
            session.add(row)
            session.flush()
            return row.id

    def level_table(self, embedder: str) -> dict | None:
        """The newest level table for `embedder` (its `table` with `source`, `impostor_trials`
        and `created_at` added), or None when none was calibrated."""
        with self.sessions() as session:
            row = session.scalars(
                select(LevelCalibration)
                .where(LevelCalibration.embedder == embedder)
                .order_by(LevelCalibration.id.desc())
            ).first()
            if row is None:
                return None
            return {
                **row.table,
                "id": row.id,
                "source": row.source,
                "impostor_trials": row.impostor_trials,
                "created_at": row.created_at.isoformat(),
            }


def _policy_open(policy: AccessPolicy, when: datetime) -> bool:
    if str(when.weekday()) not in policy.weekdays:
        return False
    moment = when.astimezone()
    if policy.valid_from is not None and moment < _aware(policy.valid_from):
        return False
    if policy.valid_until is not None and moment >= _aware(policy.valid_until):
        return False
    clock = when.time().replace(tzinfo=None)
    after_start = policy.start_time is None or clock >= policy.start_time
    before_end = policy.end_time is None or clock < policy.end_time
    return after_start and before_end


def _aware(value: datetime) -> datetime:
    """SQLite hands timezone-aware columns back naive (in UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)
