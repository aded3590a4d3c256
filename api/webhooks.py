"""A webhook on every access event: the event as JSON, signed with HMAC-SHA256, delivered by a
background thread with retries and exponential backoff, so a slow receiver never holds a door."""

import hashlib
import hmac
import json
import logging
import queue
import threading
import time

import httpx

from facegate.errors import ConfigurationError
from facegate.settings import Settings

log = logging.getLogger("facegate.webhooks")
SIGNATURE_HEADER = "X-Facegate-Signature"
TIMESTAMP_HEADER = "X-Facegate-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """sha256=<hex HMAC of "timestamp.body">: what a receiver recomputes to trust a delivery."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookSender:
    """Queue events with `send(payload)`; a daemon thread delivers them in order. Counts what was
    delivered and what was given up on (the /metrics figures)."""

    def __init__(self, settings: Settings):
        if settings.webhook_url and not settings.webhook_secret:
            raise ConfigurationError(
                "FACEGATE_WEBHOOK_URL is set without FACEGATE_WEBHOOK_SECRET: receivers could "
                "not tell facegate's deliveries from anyone else's"
            )
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret or ""
        self.attempts = max(1, settings.webhook_max_attempts)
        self.timeout = settings.webhook_timeout_s
        self.backoff_s = 0.5
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def send(self, payload: dict) -> None:
        if not self.enabled:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="facegate-webhooks", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait(json.dumps(payload, separators=(",", ":")).encode())
        except queue.Full:
            self.failed += 1
            log.error("webhook queue full; event %s not delivered", payload.get("event_id"))

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while (body := self._queue.get()) is not None:
                self._deliver(client, body)
                self._queue.task_done()

    def _deliver(self, client: httpx.Client, body: bytes) -> None:
        for attempt in range(self.attempts):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            }
            try:
                response = client.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    self.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                problem = type(error).__name__
            log.warning("webhook attempt %d/%d failed: %s", attempt + 1, self.attempts, problem)
            if attempt + 1 < self.attempts:
                time.sleep(self.backoff_s * 2**attempt)
        self.failed += 1
        log.error("webhook gave up after %d attempts", self.attempts)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued was delivered or given up on (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
