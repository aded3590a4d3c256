"""The webhook outbox: deliveries written with their access event, claimed one at a time per
receiver (the oldest first, so each receiver sees events in order), finished as delivered,
retried later or given up on. Mixed into `Store`."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.access import _aware
from db.engine import detached
from db.models import Door, WebhookDelivery, utcnow
from facegate.settings import Settings


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: int
    url: str
    body: bytes
    secret: str
    attempt: int  # 1 for the first try


class WebhookOutbox:
    sessions: sessionmaker[Session]
    settings: Settings

    def queue_deliveries(
        self, session: Session, event_id: int, door_id: int | None, body: Callable[[], dict]
    ) -> int:
        """In the event's own transaction: one delivery per receiver, the service's
        (FACEGATE_WEBHOOK_URL) and the door's own; `body` is built only when there is one."""
        targets: list[tuple[int | None, str]] = []
        if self.settings.webhook_url:
            targets.append((None, self.settings.webhook_url))
        if door_id is not None:
            url = session.scalar(select(Door.webhook_url).where(Door.id == door_id))
            if url:
                targets.append((door_id, url))
        if targets:
            text = json.dumps(body(), separators=(",", ":"))
            for door, url in targets:
                session.add(WebhookDelivery(event_id=event_id, door_id=door, url=url, body=text))
        return len(targets)

    def claim_deliveries(self, lease_s: float) -> list[Delivery]:
        """The oldest pending delivery of each receiver, where it is due, claimed for `lease_s`
        (another sender skips it meanwhile; a sender that dies leaves it to be tried again)."""
        now = utcnow()
        with self.sessions() as session:
            # each receiver's oldest pending delivery: one receiver's backlog never hides another's
            oldest_ids = (
                select(func.min(WebhookDelivery.id))
                .where(WebhookDelivery.state == "pending")
                .group_by(WebhookDelivery.url)
            )
            rows = session.execute(
                select(WebhookDelivery, Door.webhook_secret)
                .outerjoin(Door, Door.id == WebhookDelivery.door_id)
                .where(WebhookDelivery.id.in_(oldest_ids))
                .order_by(WebhookDelivery.id)
            ).all()
            session.expunge_all()
        oldest = {row.url: (row, secret) for row, secret in rows}
        claimed = []
        for row, door_secret in oldest.values():
            if _aware(row.next_attempt_at) > now:
                continue  # waiting out its backoff: the receiver's later events wait behind it
            with self.sessions.begin() as session:
                taken = session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == row.id,
                        WebhookDelivery.attempts == row.attempts,
                        WebhookDelivery.state == "pending",
                    )
                    .values(
                        attempts=row.attempts + 1,
                        next_attempt_at=now + timedelta(seconds=lease_s),
                    )
                ).rowcount
            if taken:
                secret = door_secret if row.door_id is not None else self.settings.webhook_secret
                claimed.append(
                    Delivery(
                        row.id, row.event_id, row.url, row.body.encode(), secret or "",
                        row.attempts + 1,
                    )
                )  # fmt: skip
        return claimed

    def finish_delivery(
        self, delivery_id: int, error: str | None = None, retry_at: datetime | None = None
    ) -> None:
        """Delivered (no error), to be tried again at `retry_at`, or (neither) given up on."""
        if error is None:
            values = {"state": "delivered", "delivered_at": utcnow(), "last_error": None}
        elif retry_at is not None:
            values = {"next_attempt_at": retry_at, "last_error": error[:300]}
        else:
            values = {"state": "failed", "last_error": error[:300]}
        with self.sessions.begin() as session:
            session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values)
            )

    def deliveries(self, event_id: int | None = None) -> list[WebhookDelivery]:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if event_id is not None:
            query = query.where(WebhookDelivery.event_id == event_id)
        return detached(self.sessions, query)

    def pending_deliveries(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).where(WebhookDelivery.state == "pending"))

    def prune_deliveries(self, older_than: timedelta) -> int:
        """Forget delivered rows older than `older_than` (failed ones stay, for the audit)."""
        with self.sessions.begin() as session:
            return session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.state == "delivered",
                    WebhookDelivery.delivered_at < utcnow() - older_than,
                )
            ).rowcount
