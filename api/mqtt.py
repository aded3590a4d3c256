"""MQTT: access events and enrollment job events published to a broker, for Home Assistant, NVRs
and anything else on a site's message bus. With FACEGATE_MQTT_URL set:

    <prefix>/<door>/access    every access decision at that door, as JSON, in order (QoS 1)
    <prefix>/<door>/state     the door's last decision, retained (a new subscriber sees it at once)
    <prefix>/enrollment       enrollment jobs: running, progress by stage, succeeded or failed
    <prefix>/availability     "online" (retained) while connected; "offline" on a clean stop, and
                              the broker's last will when the service dies without one

A decision never waits for the broker: `access_event` puts the event on a bounded in-memory queue
and returns. One thread publishes the queue in order, one message at a time, each held until the
broker acknowledges it (QoS 1); while the broker is away it waits, and paho reconnects with
backoff (1 s doubling to 30 s) and sends the unacknowledged message again. Delivery is at least
once: a message the broker took just before a connection dropped may arrive twice, so consumers
key on `event_id`. Events still queued when the process stops are lost (logged); the database's
event log remains the record."""

import json
import logging
import os
import queue
import socket
import ssl
import threading
from urllib.parse import unquote, urlsplit

from facegate.errors import ConfigurationError
from facegate.settings import Settings
from facegate.urls import without_credentials

log = logging.getLogger("facegate.mqtt")
SCHEMES = {"mqtt": 1883, "mqtts": 8883}
RECONNECT_S = (1, 30)
_STOP = object()


class MqttPublisher:
    """Publishes facegate's events to the broker FACEGATE_MQTT_URL names (nothing without one).
    `published` and `dropped` count what the broker acknowledged and what the full queue refused."""

    def __init__(self, settings: Settings, client_id: str | None = None):
        self.url = settings.mqtt_url
        self.prefix = settings.mqtt_topic_prefix
        self.published = 0
        self.dropped = 0
        self.unsent = 0  # queued but not acknowledged when the publisher stopped
        self.client_id = client_id or f"facegate-{socket.gethostname()}-{os.getpid()}"
        self._queue: queue.Queue = queue.Queue(maxsize=settings.mqtt_queue_max)
        self._acked: set[int] = set()
        self._acks = threading.Condition()
        self._connected = threading.Event()
        self._closing = threading.Event()
        self._pending = 0  # queued and not yet acknowledged (or given up at the stop)
        self._settled = threading.Condition()
        self._client = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        if self.url:
            self._target = _parse(self.url)

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def queued(self) -> int:
        """Events not yet acknowledged by the broker (the one being published included)."""
        return self._pending

    def topic(self, *levels: str) -> str:
        return "/".join((self.prefix, *levels))

    def access_event(self, door: str, event: dict) -> None:
        """The decision on the door's access topic, and as the door's retained state."""
        body = json.dumps(event, separators=(",", ":"))
        self._put(self.topic(door, "access"), body, False)
        self._put(self.topic(door, "state"), body, True)

    def job_event(self, event: dict) -> None:
        self._put(self.topic("enrollment"), json.dumps(event, separators=(",", ":")), False)

    def start(self) -> None:
        """Connect in the background (a broker that is down is retried, never waited for)."""
        if not self.enabled:
            return
        with self._start_lock:
            if self._thread is not None:
                return
            self._closing.clear()
            self._client = self._make_client()
            host, port = self._target["host"], self._target["port"]
            self._client.connect_async(host, port, keepalive=30)
            self._client.loop_start()
            self._thread = threading.Thread(target=self._run, name="facegate-mqtt", daemon=True)
            self._thread.start()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued event is acknowledged; False when `timeout` runs out first."""
        with self._settled:
            return self._settled.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Publish what the broker takes within `timeout`, say "offline" and disconnect."""
        if self._thread is None:
            return
        self.flush(timeout)
        self._closing.set()
        self._queue.put(_STOP)  # the thread, no longer waiting for the broker, drains the queue
        self._thread.join(timeout=5)
        if self.unsent:
            log.warning("MQTT: %d event(s) not published before the stop", self.unsent)
        client = self._client
        if self._connected.is_set():
            offline = client.publish(self.topic("availability"), "offline", qos=1, retain=True)
            offline.wait_for_publish(1)
        client.disconnect()
        client.loop_stop()
        self._thread = None

    # --- inside ----------------------------------------------------------------------------------

    def _put(self, topic: str, body: str, retain: bool) -> None:
        if not self.enabled:
            return
        self.start()
        with self._settled:
            try:
                self._queue.put_nowait((topic, body, retain))
                self._pending += 1
                return
            except queue.Full:
                self.dropped += 1
            log.error(
                "MQTT queue full (%d): an event for %s was dropped", self._queue.maxsize, topic
            )

    def _make_client(self):
        from paho.mqtt.client import CallbackAPIVersion, Client

        client = Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
        if self._target["username"] is not None:
            client.username_pw_set(self._target["username"], self._target["password"])
        if self._target["tls"]:
            client.tls_set_context(ssl.create_default_context())
        client.will_set(self.topic("availability"), "offline", qos=1, retain=True)
        client.reconnect_delay_set(*RECONNECT_S)
        client.max_queued_messages_set(0)  # the queue in front of paho is the bounded one
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self._where(), reason_code)
            return
        log.info("MQTT: connected to %s", self._where())
        client.publish(self.topic("availability"), "online", qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected.is_set():
            log.warning("MQTT: lost the broker %s (%s); reconnecting", self._where(), reason_code)
        self._connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._acks:
            self._acked.add(mid)
            self._acks.notify_all()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            if self._deliver(*item):
                self.published += 1
            else:
                self.unsent += 1
            with self._settled:
                self._pending -= 1
                self._settled.notify_all()

    def _deliver(self, topic: str, body: str, retain: bool) -> bool:
        """Publish one message and wait for the broker's acknowledgement. paho keeps a QoS 1
        message it could not send, or that was not acknowledged, and sends it again after the
        reconnection, so the wait goes on across one: the next message waits its turn."""
        while not self._connected.wait(timeout=0.5):
            if self._closing.is_set():
                return False
        info = self._client.publish(topic, body, qos=1, retain=retain)
        with self._acks:
            while info.mid not in self._acked:
                if self._closing.is_set():
                    return False
                self._acks.wait(timeout=0.5)
            # older acknowledgements (the availability messages') go too, so a message id paho
            # uses again later is never taken for acknowledged in advance
            self._acked.clear()
        return True

    def _where(self) -> str:
        return without_credentials(self.url or "")


def _parse(url: str) -> dict:
    """mqtt[s]://[user[:password]@]host[:port]: what the client connects with; anything else is a
    configuration error that names the setting."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"FACEGATE_MQTT_URL {without_credentials(url)!r}: the scheme must be mqtt or mqtts"
        )
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigurationError(
            f"FACEGATE_MQTT_URL {without_credentials(url)!r} is not mqtt[s]://[user:password@]"
            "host[:port]"
        )
    return {
        "host": parts.hostname,
        "port": port,
        "username": unquote(parts.username) if parts.username is not None else None,
        "password": unquote(parts.password) if parts.password is not None else None,
        "tls": parts.scheme == "mqtts",
    }
