"""MQTT publishing against a real Mosquitto broker: order, no loss across a broker restart, no
waiting for the broker, the retained door state, availability and the last will."""

import json
import subprocess
import sys
import textwrap
import time

import pytest

from api.mqtt import MqttPublisher
from facegate.errors import ConfigurationError
from facegate.settings import Settings
from tests.mqtt_support import Subscriber


def publisher(tmp_path, url: str, **settings) -> MqttPublisher:
    return MqttPublisher(Settings(_env_file=None, data_dir=tmp_path, mqtt_url=url, **settings))


def event(i: int) -> dict:
    return {"type": "access_event", "event_id": i, "door": "lobby", "decision": "grant"}


def test_every_event_arrives_in_order_across_a_broker_restart(tmp_path, mqtt_broker):
    watcher = Subscriber(mqtt_broker.port, "facegate/#", "watcher")
    mqtt = publisher(tmp_path, mqtt_broker.url)
    try:
        for i in range(1, 31):
            mqtt.access_event("lobby", event(i))
        assert mqtt.flush(30) and mqtt.published == 60  # each event: access and state topics

        mqtt_broker.stop()
        deadline = time.monotonic() + 10
        while mqtt.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not mqtt.connected
        # while the broker is away, publishing returns at once: the events wait in the queue
        for i in range(31, 61):
            mqtt.access_event("lobby", event(i))
        assert mqtt_broker.process is None and mqtt.queued == 60 and not mqtt.flush(0.2)

        mqtt_broker.start()
        assert mqtt.flush(60), f"{mqtt.queued} events still queued after the broker came back"
        assert mqtt.published == 120 and mqtt.dropped == 0 and mqtt.unsent == 0
        assert watcher.wait_for(lambda m: len({p for t, p, _ in m if t.endswith("/access")}) >= 60)
        ids = [e["event_id"] for e in watcher.events("lobby/access")]
        assert ids == list(range(1, 61))  # none lost, first arrivals in order

        # a new subscriber sees the door's last decision and the service's availability at once
        late = Subscriber(mqtt_broker.port, "facegate/+/state", "late", persistent=False)
        assert late.wait_for(lambda m: len(m) >= 1, 10)
        topic, payload, retained = late.messages[0]
        assert topic == "facegate/lobby/state" and retained
        assert json.loads(payload)["event_id"] == 60
        late.close()
    finally:
        mqtt.close()
        watcher.close()
    status = Subscriber(mqtt_broker.port, "facegate/availability", "status", persistent=False)
    assert status.wait_for(lambda m: len(m) >= 1, 10)
    assert status.messages[0][1:] == ("offline", True)  # said on the clean stop, retained
    status.close()


def test_the_broker_says_offline_for_a_service_that_dies(tmp_path, mqtt_broker):
    script = textwrap.dedent(f"""
        import sys, time
        from api.mqtt import MqttPublisher
        from facegate.settings import Settings
        mqtt = MqttPublisher(Settings(_env_file=None, data_dir={str(tmp_path)!r},
                                      mqtt_url={mqtt_broker.url!r}))
        mqtt.access_event("gate", {{"event_id": 1}})
        assert mqtt.flush(20)
        print("up", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "up"
        status = Subscriber(mqtt_broker.port, "facegate/availability", "status", persistent=False)
        assert status.wait_for(lambda m: len(m) >= 1, 10)
        assert status.messages[0][1] == "online"
        child.kill()  # no DISCONNECT: the broker publishes the last will
        assert status.wait_for(lambda m: any(p == "offline" for _, p, _ in m), 10)
        status.close()
    finally:
        child.kill()
        child.wait()


def test_a_full_queue_drops_new_events_and_counts_them_without_waiting(tmp_path):
    # nothing listens on this broker address: the publisher keeps retrying in the background
    mqtt = publisher(tmp_path, "mqtt://127.0.0.1:9", mqtt_queue_max=3)
    try:
        for i in range(5):
            mqtt.access_event("lobby", event(i))  # returns at once: 10 messages, room for 3
        # the queue holds 3; the publishing thread may hold one more, waiting for the broker
        held = mqtt.queued
        assert held in (3, 4) and mqtt.dropped == 10 - held
        assert mqtt.published == 0 and not mqtt.connected
    finally:
        mqtt.close(timeout=0.1)
    assert mqtt.unsent == held


@pytest.mark.parametrize(
    "url, says",
    [
        ("http://broker:1883", "the scheme must be mqtt or mqtts"),
        ("mqtt://", "is not mqtt[s]://"),
        ("mqtt://broker:99999", "is not mqtt[s]://"),
        ("mqtt://broker/topic", "is not mqtt[s]://"),
    ],
)
def test_a_bad_broker_url_is_refused_naming_the_setting(tmp_path, url, says):
    with pytest.raises(ConfigurationError, match="FACEGATE_MQTT_URL") as error:
        publisher(tmp_path, url)
    assert says in str(error.value)


def test_the_password_in_the_broker_url_is_never_shown(tmp_path):
    with pytest.raises(ConfigurationError) as error:
        publisher(tmp_path, "tcp://user:hunter2@broker:1883")
    assert "hunter2" not in str(error.value) and "***@broker:1883" in str(error.value)
