"""Webhooks on every access event: the event as JSON, signed with HMAC-SHA256, to the service's
receiver (FACEGATE_WEBHOOK_URL) and to the door's own, delivered from the outbox (db/outbox.py)
by a background thread with retries and exponential backoff, so a slow receiver never holds a
door and a restart loses no delivery."""

import hashlib
import hmac
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx

from db.outbox import Delivery
from facegate.errors import ConfigurationError
from facegate.settings import Settings
from facegate.urls import without_credentials

if TYPE_CHECKING:
    from db import Store

log = logging.getLogger("facegate.webhooks")
SIGNATURE_HEADER = "X-Facegate-Signature"
TIMESTAMP_HEADER = "X-Facegate-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """sha256=<hex HMAC of "timestamp.body">: what a receiver recomputes to trust a delivery."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookSender:
    """Delivers the outbox (db/outbox.py): a daemon thread claims each receiver's oldest due
    delivery, POSTs it signed, and marks it delivered, retried with backoff, or given up on after
    FACEGATE_WEBHOOK_MAX_ATTEMPTS. `notify()` wakes it for a new event; it also looks every
    POLL_S for retries and for deliveries left by an earlier process. Counts what was delivered
    and given up on since the start (the /metrics figures)."""

    POLL_S = 2.0
    KEEP_DELIVERED = timedelta(days=7)

    def __init__(self, settings: Settings, store: "Store"):
        if settings.webhook_url and not settings.webhook_secret:
            raise ConfigurationError(
                "FACEGATE_WEBHOOK_URL is set without FACEGATE_WEBHOOK_SECRET: receivers could "
                "not tell facegate's deliveries from anyone else's"
            )
        self.store = store
        self.attempts = max(1, settings.webhook_max_attempts)
        self.timeout = settings.webhook_timeout_s
        self.backoff_s = 0.5
        self.delivered = 0
        self.failed = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="facegate-webhooks", daemon=True)
            self._thread.start()

    def notify(self) -> None:
        self.start()
        self._wake.set()

    @property
    def pending(self) -> int:
        return self.store.pending_deliveries()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                self._wake.clear()  # before the claim: a notify() from now on is not lost
                try:
                    due = self.store.claim_deliveries(lease_s=self.timeout + 30)
                    for delivery in due:
                        self._deliver(client, delivery)
                    if time.monotonic() - self._pruned > 3600:
                        self.store.prune_deliveries(self.KEEP_DELIVERED)
                        self._pruned = time.monotonic()
                except Exception:  # the database is away: the rows wait, so does this thread
                    log.exception("webhook outbox unavailable; trying again")
                    due = []
                if not due:
                    self._wake.wait(self.POLL_S)

    def _deliver(self, client: httpx.Client, delivery: Delivery) -> None:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(delivery.secret, timestamp, delivery.body),
        }
        try:
            response = client.post(delivery.url, content=delivery.body, headers=headers)
            problem = None if response.status_code < 300 else f"HTTP {response.status_code}"
        except httpx.HTTPError as error:
            problem = type(error).__name__
        if problem is None:
            self.store.finish_delivery(delivery.id)
            self.delivered += 1
            return
        where = f"event {delivery.event_id} to {without_credentials(delivery.url)}"
        if delivery.attempt < self.attempts:
            wait = self.backoff_s * 2 ** (delivery.attempt - 1)
            log.warning(
                "webhook %s: attempt %d/%d failed (%s); again in %.1f s",
                where, delivery.attempt, self.attempts, problem, wait,
            )  # fmt: skip
            retry_at = datetime.now(UTC) + timedelta(seconds=wait)
            self.store.finish_delivery(delivery.id, problem, retry_at=retry_at)
            return
        self.store.finish_delivery(delivery.id, problem)
        self.failed += 1
        log.error("webhook %s: given up after %d attempts (%s)", where, self.attempts, problem)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the outbox holds nothing pending (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        self.notify()
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.pending

    def close(self) -> None:
        """Stop the thread; what it has not delivered stays in the outbox for the next start."""
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=self.timeout + 1)
            self._thread = None
