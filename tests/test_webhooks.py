"""The webhook outbox against real HTTP receivers and a real database: deliveries are written with
their event, each receiver gets its events in order and signed with its own secret (the
service's, the door's), a receiver that is down keeps its deliveries across a restart, and one
that keeps failing is given up on, with the reason kept."""

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from api.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSender
from db import Store, upgrade
from db.access import InvalidDoorError
from db.engine import make_engine, sqlite_url
from facegate.settings import Settings
from tests.db_support import postgres_database

SERVICE_SECRET = "service-secret-0123"
DOOR_SECRET = "lobby-door-secret-4567"


class Receiver:
    """An HTTP receiver on `port` that answers `status`, recording each body and its headers."""

    def __init__(self, port: int = 0, status: int = 204):
        self.status, self.received = status, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.received.append((dict(self.headers), body))
                self.send_response(owner.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, secret: str) -> list[int]:
        """The event ids received, each signature checked against `secret`."""
        ids = []
        for headers, body in self.received:
            stamp = headers[TIMESTAMP_HEADER]
            mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
            assert headers[SIGNATURE_HEADER] == "sha256=" + mac.hexdigest()
            ids.append(json.loads(body)["event_id"])
        return ids

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "data")
    else:
        yield from postgres_database()


def open_store(root, url: str | None = None, **settings) -> Store:
    s = Settings(_env_file=None, data_dir=root / "data", database_url=url, **settings)
    upgrade(make_engine(url or sqlite_url(s.data_dir)))
    return Store(s)


def record(store: Store, door_id: int | None, n: int) -> list[int]:
    """`n` access events at the door, each with its webhook body (as the recognizer writes)."""
    ids = []
    for _ in range(n):

        def body(event_id: int) -> dict:
            return {"type": "access_event", "event_id": event_id, "decision": "unknown"}

        ids.append(store.record_event("unknown", door_id, None, None, 0, {}, {}, None, body))
    return ids


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_a_receiver_that_is_down_gets_every_event_in_order_after_a_restart(tmp_path, db_url):
    down_port = free_port()  # the service's receiver: nothing listens here yet
    lobby = Receiver()
    settings = {
        "webhook_url": f"http://127.0.0.1:{down_port}/hook",
        "webhook_secret": SERVICE_SECRET,
        "webhook_max_attempts": 100,
    }
    store = open_store(tmp_path, db_url, **settings)
    door = store.add_door("lobby", webhook_url=lobby.url, webhook_secret=DOOR_SECRET)
    store.add_door("garage")  # no receiver of its own: only the service's
    sender = WebhookSender(store.settings, store)
    sender.start()
    events = record(store, door.id, 5) + record(store, store.door("garage").id, 2)
    sender.notify()
    # the door's receiver has its own events, in order, signed with the door's secret
    assert wait_until(lambda: len(lobby.received) == 5)
    assert lobby.events(DOOR_SECRET) == events[:5]
    assert wait_until(lambda: any(d.attempts >= 2 for d in store.deliveries()))
    sender.close()
    store.close()
    pending = [d for d in Store(store.settings).deliveries() if d.state == "pending"]
    assert [d.event_id for d in pending] == events  # all 7 kept for the service's receiver
    assert all(d.last_error == "ConnectError" for d in pending if d.attempts)

    # the service restarts with its receiver back: everything arrives, in order
    service = Receiver(down_port)
    store = Store(store.settings)
    sender = WebhookSender(store.settings, store)
    sender.start()
    try:
        assert sender.flush(30) and store.pending_deliveries() == 0
        assert service.events(SERVICE_SECRET) == events
        assert len(lobby.received) == 5  # nothing delivered twice to the door's receiver
        assert all(d.state == "delivered" and d.delivered_at for d in store.deliveries())
    finally:
        sender.close()
        store.close()
        service.close()
        lobby.close()


def test_a_receiver_that_keeps_failing_is_given_up_on_with_the_reason(tmp_path):
    failing = Receiver(status=500)
    store = open_store(
        tmp_path, webhook_url=failing.url, webhook_secret=SERVICE_SECRET, webhook_max_attempts=3
    )
    sender = WebhookSender(store.settings, store)
    sender.backoff_s = 0.05
    try:
        (event,) = record(store, None, 1)
        assert sender.flush(20)
        (delivery,) = store.deliveries(event)
        assert delivery.state == "failed" and delivery.attempts == 3
        assert delivery.last_error == "HTTP 500" and sender.failed == 1
        assert len(failing.received) == 3
    finally:
        sender.close()
        store.close()
        failing.close()


def test_no_receiver_no_delivery_and_a_removed_door_takes_its_own(tmp_path):
    store = open_store(tmp_path)
    try:
        quiet = store.add_door("quiet")
        record(store, quiet.id, 2)
        assert store.deliveries() == []  # neither the service nor the door has a receiver
        store.set_door_webhook("quiet", "http://127.0.0.1:9/hook", DOOR_SECRET)
        record(store, quiet.id, 2)
        assert store.pending_deliveries() == 2
        store.delete_door("quiet")
        assert store.deliveries() == []
    finally:
        store.close()


@pytest.mark.parametrize(
    "url, secret, says",
    [
        ("ftp://nvr/hook", DOOR_SECRET, "http(s)://host/path"),
        ("https:///hook", DOOR_SECRET, "http(s)://host/path"),
        ("https://nvr/hook", None, "its own secret of 16-200 characters"),
        ("https://nvr/hook", "short", "its own secret of 16-200 characters"),
        (None, DOOR_SECRET, "http(s)://host/path"),
    ],
)
def test_a_door_webhook_needs_an_http_url_and_its_own_secret(tmp_path, url, secret, says):
    store = open_store(tmp_path)
    try:
        with pytest.raises(InvalidDoorError) as error:
            store.add_door("lobby", webhook_url=url, webhook_secret=secret)
        assert says in str(error.value)
        assert store.doors() == []  # nothing half made
    finally:
        store.close()


def test_one_receivers_backlog_never_hides_another_receivers_deliveries(tmp_path):
    store = open_store(
        tmp_path, webhook_url="http://127.0.0.1:9/dead", webhook_secret=SERVICE_SECRET
    )
    try:
        from db.models import WebhookDelivery

        (event,) = record(store, None, 1)
        with store.sessions.begin() as session:  # a dead receiver's long backlog
            session.add_all(
                WebhookDelivery(event_id=event, url="http://127.0.0.1:9/dead", body="{}")
                for _ in range(1500)
            )
        door = store.add_door(
            "gate", webhook_url="http://127.0.0.1:9/gate", webhook_secret=DOOR_SECRET
        )
        (later,) = record(store, door.id, 1)
        claimed = store.claim_deliveries(lease_s=60)
        assert {(d.url, d.event_id, d.attempt) for d in claimed} == {
            ("http://127.0.0.1:9/dead", event, 1),
            ("http://127.0.0.1:9/gate", later, 1),
        }
        assert store.claim_deliveries(lease_s=60) == []  # both leased: nothing due
    finally:
        store.close()
