"""A real Mosquitto broker per test (Debian's package), on a free port, with persistence so a
subscriber's session survives a restart; and a subscriber that records what it receives."""

import getpass
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """`start()` and `stop()` the same broker (same port, same persistence folder) again."""

    def __init__(self, folder: Path):
        if not os.access(MOSQUITTO, os.X_OK):
            reason = "no mosquitto broker installed (Debian package mosquitto)"
            if os.environ.get("FACEGATE_REQUIRE_MQTT") == "1":
                pytest.fail(f"FACEGATE_REQUIRE_MQTT=1 but {reason}")
            pytest.skip(reason)
        folder.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            # started as root, mosquitto would switch to its own user, which cannot write here
            f"user {getpass.getuser()}\n"
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nlog_dest file {folder}/mosquitto.log\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen on {self.port} within 10 s")

    def stop(self) -> None:
        """A clean stop (SIGTERM): the broker saves its sessions and closes every connection."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class Subscriber:
    """A persistent session (QoS 1) on `topics`: what the broker holds for it while it is away
    is delivered when it is back. `messages` is (topic, payload text, retained) in arrival order."""

    def __init__(self, port: int, topics: str, client_id: str, persistent: bool = True):
        from paho.mqtt.client import CallbackAPIVersion, Client

        self.messages: list[tuple[str, str, bool]] = []
        self.arrived = threading.Condition()
        self.client = Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent
        )
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = lambda c, *_: c.subscribe(topics, qos=1)
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), f"no subscription to {topics} within 10 s"

    def _on_message(self, client, userdata, message) -> None:
        with self.arrived:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))
            self.arrived.notify_all()

    def wait_for(self, done, timeout: float = 30.0) -> bool:
        """Wait until `done(messages)` holds."""
        with self.arrived:
            return self.arrived.wait_for(lambda: done(self.messages), timeout)

    def events(self, suffix: str) -> list[dict]:
        """The JSON payloads of topics ending in `suffix`, first arrivals only (by event_id or,
        for job events, by the whole event): delivery is at least once."""
        seen, out = set(), []
        for topic, payload, _ in list(self.messages):
            if topic.endswith(suffix):
                event = json.loads(payload)
                key = event.get("event_id") or payload
                if key not in seen:
                    seen.add(key)
                    out.append(event)
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
